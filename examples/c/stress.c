/*
 * stress: many create/run/free cycles through xnpu's C ABI, with both output modes and every
 * error path, for leak checkers (ffi/tests/c_examples.rs runs it under valgrind).
 *
 *   stress MODEL.onnx [CYCLES]
 *
 * MODEL is a model with one float32 input of shape [batch or 1, 3, 32, 32] and one float32
 * output (models/tinycnn.onnx). Each cycle makes a session (from the path, or from bytes on odd
 * cycles), reads its metadata, runs it with library-allocated outputs and into a buffer,
 * compares the two, asks for the explanation, walks the error paths (each must fail with the
 * expected code and a message naming the argument) and frees everything. Exits 0 when every
 * check held.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xnpu.h"

static int problems = 0;
static long calls = 0;

/* A call that must succeed. */
static int ok(XnpuStatus *status, const char *what) {
    calls++;
    if (status == NULL) return 1;
    fprintf(stderr, "%s failed (code %d): %s\n", what, (int)xnpu_status_code(status),
            xnpu_status_message(status));
    xnpu_status_free(status);
    problems++;
    return 0;
}

/* A call that must fail with `code` and a message containing `needle`. */
static void fails(XnpuStatus *status, XnpuCode code, const char *needle, const char *what) {
    calls++;
    if (status == NULL) {
        fprintf(stderr, "%s: succeeded, expected code %d\n", what, (int)code);
        problems++;
        return;
    }
    const char *message = xnpu_status_message(status);
    if (xnpu_status_code(status) != code || strstr(message, needle) == NULL) {
        fprintf(stderr, "%s: code %d \"%s\", expected code %d naming \"%s\"\n", what,
                (int)xnpu_status_code(status), message, (int)code, needle);
        problems++;
    }
    xnpu_status_free(status);
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    unsigned char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            }
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

#define PIXELS (3 * 32 * 32)

/* The error paths of one session; `x` is a valid input. */
static void error_paths(XnpuSession *s, const XnpuInput *x, const char *out_name) {
    XnpuTensor *t = (XnpuTensor *)&t; /* not NULL: a failed run must set it to NULL */
    XnpuInput bad = *x;
    bad.name = "nope";
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_INVALID_INPUT, "\"nope\"",
          "bad input name");
    if (t != NULL) {
        fprintf(stderr, "a failed run left its output set\n");
        problems++;
    }
    int64_t small[4] = {1, 3, 16, 64};
    bad = *x;
    bad.shape = small;
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_INVALID_INPUT, "input",
          "wrong shape");
    bad = *x;
    bad.byte_len = 12;
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_INVALID_INPUT,
          "inputs[0].byte_len", "wrong byte_len");
    bad = *x;
    bad.dtype = 6; /* int32: as many bytes as float */
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_INVALID_INPUT, "input",
          "wrong dtype");
    bad = *x;
    bad.dtype = 8; /* string */
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_UNSUPPORTED, "STRING",
          "string input");
    bad = *x;
    bad.struct_size = 8;
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_INVALID_ARGUMENT,
          "inputs[0].struct_size", "struct_size too small");
    bad = *x;
    bad.shape = NULL;
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_INVALID_ARGUMENT,
          "inputs[0].shape", "NULL shape");
    bad = *x;
    bad.data = NULL;
    fails(xnpu_session_run(s, &bad, 1, NULL, &t, 1), XNPU_CODE_INVALID_ARGUMENT,
          "inputs[0].data", "NULL data");
    XnpuInput twice[2] = {*x, *x};
    fails(xnpu_session_run(s, twice, 2, NULL, &t, 1), XNPU_CODE_INVALID_INPUT, "twice",
          "an input given twice");
    fails(xnpu_session_run(NULL, x, 1, NULL, &t, 1), XNPU_CODE_INVALID_ARGUMENT, "session",
          "NULL session");
    fails(xnpu_session_run(s, NULL, 1, NULL, &t, 1), XNPU_CODE_INVALID_ARGUMENT, "inputs",
          "NULL inputs");
    fails(xnpu_session_run(s, x, 1, NULL, NULL, 1), XNPU_CODE_INVALID_ARGUMENT, "outputs",
          "NULL outputs");
    fails(xnpu_session_run(s, x, 1, NULL, &t, 2), XNPU_CODE_INVALID_ARGUMENT, "n_outputs",
          "wrong output count");
    fails(xnpu_session_run(s, NULL, 0, NULL, &t, 1), XNPU_CODE_INVALID_INPUT, "missing",
          "missing input");
    const char *unknown = "nowhere";
    fails(xnpu_session_run(s, x, 1, &unknown, &t, 1), XNPU_CODE_INVALID_INPUT, "\"nowhere\"",
          "unknown output name");

    float tiny[2];
    XnpuOutputBuffer b = {.struct_size = sizeof(XnpuOutputBuffer)};
    b.name = out_name;
    b.data = tiny;
    b.capacity = sizeof tiny;
    fails(xnpu_session_run_into(s, x, 1, &b, 1), XNPU_CODE_INVALID_ARGUMENT,
          "outputs[0].capacity", "output buffer too small");
    if (b.byte_len <= sizeof tiny) {
        fprintf(stderr, "a too-small buffer did not learn the size it needs\n");
        problems++;
    }
    b.name = NULL;
    fails(xnpu_session_run_into(s, x, 1, &b, 1), XNPU_CODE_INVALID_ARGUMENT,
          "outputs[0].name", "NULL output name");

    XnpuIoInfo info = {.struct_size = sizeof(XnpuIoInfo)};
    fails(xnpu_session_input_info(s, 99, &info), XNPU_CODE_INVALID_ARGUMENT, "index",
          "input index out of range");
    info.struct_size = 4;
    fails(xnpu_session_output_info(s, 0, &info), XNPU_CODE_INVALID_ARGUMENT,
          "info->struct_size", "XnpuIoInfo too small");
    fails(xnpu_session_input_count(s, NULL), XNPU_CODE_INVALID_ARGUMENT, "out",
          "NULL count");
    fails(xnpu_session_explain_json(NULL, NULL), XNPU_CODE_INVALID_ARGUMENT, "session",
          "NULL explain");
}

/* Session options that are wrong, and models that are not there or not ONNX. */
static void create_errors(const char *model) {
    XnpuSession *s = NULL;
    XnpuSessionOptions o = {.struct_size = sizeof(XnpuSessionOptions)};
    o.devices = "cpu";
    o.level = "fast";
    fails(xnpu_session_create(model, &o, &s), XNPU_CODE_INVALID_INPUT, "options->level",
          "unknown level");
    o.level = NULL;
    o.precision = "f12";
    fails(xnpu_session_create(model, &o, &s), XNPU_CODE_INVALID_INPUT, "options->precision",
          "unknown precision");
    o.precision = NULL;
    o.struct_size = 16;
    fails(xnpu_session_create(model, &o, &s), XNPU_CODE_INVALID_ARGUMENT,
          "options->struct_size", "options too small");
    o.struct_size = sizeof o;
    o.devices = "no-such-device";
    fails(xnpu_session_create(model, &o, &s), XNPU_CODE_INVALID_INPUT, "no-such-device",
          "unknown device");
    o.devices = "cpu";
    fails(xnpu_session_create("/nonexistent/model.onnx", &o, &s), XNPU_CODE_IO,
          "/nonexistent/model.onnx", "missing file");
    fails(xnpu_session_create(NULL, &o, &s), XNPU_CODE_INVALID_ARGUMENT, "path",
          "NULL path");
    fails(xnpu_session_create(model, &o, NULL), XNPU_CODE_INVALID_ARGUMENT, "out", "NULL out");
    static const unsigned char junk[] = "this is not an ONNX model";
    fails(xnpu_session_create_from_bytes(junk, sizeof junk, "junk.onnx", &o, &s),
          XNPU_CODE_MODEL, "junk.onnx", "not ONNX");
    fails(xnpu_session_create_from_bytes(NULL, 10, NULL, &o, &s), XNPU_CODE_INVALID_ARGUMENT,
          "data", "NULL bytes");
    if (s != NULL) {
        fprintf(stderr, "a failed create left its session set\n");
        problems++;
    }
}

/* One cycle: returns 0 when it could not make a session. */
static int cycle(const char *model, const unsigned char *bytes, size_t len, int from_bytes,
                 const float *pixels, int with_errors) {
    XnpuSessionOptions o = {.struct_size = sizeof(XnpuSessionOptions)};
    o.devices = "cpu";
    o.level = from_bytes ? "basic" : "all";
    XnpuSession *s = NULL;
    if (!(from_bytes ? ok(xnpu_session_create_from_bytes(bytes, len, "stress.onnx", &o, &s),
                          "xnpu_session_create_from_bytes")
                     : ok(xnpu_session_create(model, &o, &s), "xnpu_session_create")))
        return 0;

    size_t n_in = 0, n_out = 0;
    XnpuIoInfo in = {.struct_size = sizeof(XnpuIoInfo)}, out = {.struct_size = sizeof(XnpuIoInfo)};
    if (!ok(xnpu_session_input_count(s, &n_in), "input_count") ||
        !ok(xnpu_session_output_count(s, &n_out), "output_count") ||
        !ok(xnpu_session_input_info(s, 0, &in), "input_info") ||
        !ok(xnpu_session_output_info(s, 0, &out), "output_info") || n_in != 1 ||
        n_out != 1 || in.rank != 4 || in.dims[1] != 3) {
        fprintf(stderr, "unexpected model metadata\n");
        problems++;
        xnpu_session_free(s);
        return 0;
    }

    int64_t shape[4] = {1, 3, 32, 32};
    XnpuInput x = {.struct_size = sizeof(XnpuInput)};
    x.name = in.name;
    x.dtype = 1;
    x.rank = 4;
    x.shape = shape;
    x.data = pixels;
    x.byte_len = PIXELS * sizeof(float);

    XnpuTensor *t = NULL;
    if (ok(xnpu_session_run(s, &x, 1, NULL, &t, 1), "xnpu_session_run")) {
        float buf[64];
        int64_t dims[8];
        XnpuOutputBuffer b = {.struct_size = sizeof(XnpuOutputBuffer)};
        b.name = out.name;
        b.data = buf;
        b.capacity = sizeof buf;
        b.dims = dims;
        b.dims_capacity = 8;
        if (ok(xnpu_session_run_into(s, &x, 1, &b, 1), "xnpu_session_run_into") &&
            (b.byte_len != xnpu_tensor_byte_len(t) || b.rank != xnpu_tensor_rank(t) ||
             b.dtype != xnpu_tensor_dtype(t) ||
             memcmp(buf, xnpu_tensor_data(t), b.byte_len) != 0 ||
             memcmp(dims, xnpu_tensor_dims(t), b.rank * sizeof(int64_t)) != 0 ||
             strcmp(xnpu_tensor_name(t), out.name) != 0)) {
            fprintf(stderr, "the two output modes disagree\n");
            problems++;
        }
        xnpu_tensor_free(t);
    }

    char *json = NULL;
    if (ok(xnpu_session_explain_json(s, &json), "explain_json")) {
        if (strstr(json, "\"xnpu.explain/1\"") == NULL) {
            fprintf(stderr, "the explanation lacks its schema\n");
            problems++;
        }
        xnpu_string_free(json);
    }
    if (with_errors) error_paths(s, &x, out.name);
    xnpu_session_free(s);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.onnx [CYCLES]\n", argv[0]);
        return 2;
    }
    long cycles = argc > 2 ? strtol(argv[2], NULL, 10) : 200;
    size_t len = 0;
    unsigned char *bytes = read_file(argv[1], &len);
    if (bytes == NULL) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 1;
    }
    float *pixels = malloc(PIXELS * sizeof(float));
    if (pixels == NULL) return 1;
    for (int i = 0; i < PIXELS; i++) pixels[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;

    XnpuDeviceList *devices = NULL;
    if (ok(xnpu_devices(&devices), "xnpu_devices")) {
        XnpuDeviceInfo d = {.struct_size = sizeof(XnpuDeviceInfo)};
        for (size_t i = 0; i < xnpu_device_list_count(devices); i++)
            ok(xnpu_device_list_get(devices, i, &d), "xnpu_device_list_get");
        fails(xnpu_device_list_get(devices, 999, &d), XNPU_CODE_INVALID_ARGUMENT, "index",
              "device index out of range");
        xnpu_device_list_free(devices);
    }
    create_errors(argv[1]);

    long done = 0;
    for (long c = 0; c < cycles; c++) done += cycle(argv[1], bytes, len, (int)(c % 2), pixels, 1);
    xnpu_status_free(NULL);
    xnpu_session_free(NULL);
    xnpu_tensor_free(NULL);
    xnpu_string_free(NULL);
    xnpu_device_list_free(NULL);
    free(pixels);
    free(bytes);
    printf("stress: %ld of %ld cycles, %ld calls, %d problems\n", done, cycles, calls, problems);
    return problems == 0 && done == cycles ? 0 : 1;
}
