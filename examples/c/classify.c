/*
 * classify: runs an image classifier through xnpu's C ABI and prints each image's top class.
 *
 *   classify MODEL.onnx IMAGES.npy [DEVICES]
 *
 * IMAGES.npy is a float32 array in NumPy's .npy format (NCHW, a batch of images), e.g.
 * models/tinycnn.image.npy; DEVICES is a device policy (default "cpu"). Build and run:
 *
 *   cargo build --release -p xnpu-ffi
 *   cc -std=c11 -O2 -Iffi/include examples/c/classify.c -Ltarget/release -lxnpu_ffi \
 *      -Wl,-rpath,$PWD/target/release -o classify
 *   ./classify models/tinycnn.onnx models/tinycnn.image.npy
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xnpu.h"

/* Prints a failed call's status and frees it; returns whether the call failed. */
static int failed(XnpuStatus *status, const char *what) {
    if (status == NULL) return 0;
    fprintf(stderr, "%s failed (code %d): %s\n", what, (int)xnpu_status_code(status),
            xnpu_status_message(status));
    xnpu_status_free(status);
    return 1;
}

/* A little-endian float32 C-order array read from a .npy file. */
typedef struct {
    int64_t shape[8];
    uint32_t rank;
    float *data;
    size_t byte_len;
} Npy;

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = '\0';
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* Reads a .npy file of dtype '<f4' (versions 1 to 3 of the format); 0 on success. */
static int read_npy(const char *path, Npy *out) {
    size_t len = 0;
    char *buf = read_file(path, &len);
    if (buf == NULL) {
        fprintf(stderr, "%s: cannot read\n", path);
        return 1;
    }
    int ok = len >= 10 && memcmp(buf, "\x93NUMPY", 6) == 0;
    size_t header_len = 0, start = 0;
    if (ok && buf[6] == 1) {
        header_len = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
        start = 10;
    } else if (ok && len >= 12) {
        header_len = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8 |
                     (size_t)(unsigned char)buf[10] << 16 | (size_t)(unsigned char)buf[11] << 24;
        start = 12;
    } else {
        ok = 0;
    }
    ok = ok && header_len <= len - start;
    char *header = ok ? buf + start : NULL;
    if (ok) header[header_len - 1] = '\0'; /* the header ends with '\n' */
    ok = ok && strstr(header, "'descr': '<f4'") != NULL &&
         strstr(header, "'fortran_order': False") != NULL;
    const char *shape = ok ? strstr(header, "'shape': (") : NULL;
    size_t count = 1;
    out->rank = 0;
    if (shape != NULL) {
        const char *p = shape + strlen("'shape': (");
        while (*p != ')' && *p != '\0' && out->rank < 8) {
            char *end;
            long long d = strtoll(p, &end, 10);
            if (end == p || d < 0) break;
            out->shape[out->rank++] = d;
            count *= (size_t)d;
            p = end;
            while (*p == ',' || *p == ' ') p++;
        }
        ok = *p == ')';
    } else {
        ok = 0;
    }
    size_t data_start = start + header_len;
    if (!ok || len - data_start != count * sizeof(float)) {
        fprintf(stderr, "%s: not a C-order float32 .npy file of the size its header says\n",
                path);
        free(buf);
        return 1;
    }
    out->byte_len = count * sizeof(float);
    out->data = malloc(out->byte_len ? out->byte_len : 1);
    if (out->data == NULL) {
        free(buf);
        return 1;
    }
    memcpy(out->data, buf + data_start, out->byte_len);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.onnx IMAGES.npy [DEVICES]\n", argv[0]);
        return 2;
    }
    Npy image;
    if (read_npy(argv[2], &image) != 0) return 1;

    XnpuSessionOptions options = {.struct_size = sizeof(XnpuSessionOptions)};
    options.devices = argc > 3 ? argv[3] : "cpu";
    XnpuSession *session = NULL;
    if (failed(xnpu_session_create(argv[1], &options, &session), "xnpu_session_create")) {
        free(image.data);
        return 1;
    }

    XnpuIoInfo in = {.struct_size = sizeof(XnpuIoInfo)}, out = {.struct_size = sizeof(XnpuIoInfo)};
    int rc = 1;
    if (failed(xnpu_session_input_info(session, 0, &in), "xnpu_session_input_info") ||
        failed(xnpu_session_output_info(session, 0, &out), "xnpu_session_output_info"))
        goto done;
    printf("xnpu %s: %s -> %s (%s)\n", xnpu_version(), in.name, out.name,
           xnpu_dtype_name(out.dtype));

    XnpuInput input = {.struct_size = sizeof(XnpuInput)};
    input.name = in.name;
    input.dtype = 1; /* float */
    input.rank = image.rank;
    input.shape = image.shape;
    input.data = image.data;
    input.byte_len = image.byte_len;
    XnpuTensor *probs = NULL;
    if (failed(xnpu_session_run(session, &input, 1, &out.name, &probs, 1), "xnpu_session_run"))
        goto done;

    /* One row of class probabilities per image. */
    const float *p = xnpu_tensor_data(probs);
    size_t rank = xnpu_tensor_rank(probs);
    const int64_t *dims = xnpu_tensor_dims(probs);
    size_t classes = rank > 0 ? (size_t)dims[rank - 1] : 1;
    size_t rows = classes > 0 ? xnpu_tensor_byte_len(probs) / sizeof(float) / classes : 0;
    for (size_t r = 0; r < rows; r++) {
        size_t best = 0;
        for (size_t c = 1; c < classes; c++)
            if (p[r * classes + c] > p[r * classes + best]) best = c;
        printf("image %zu: top class %zu, probability %.6f\n", r, best, p[r * classes + best]);
    }
    xnpu_tensor_free(probs);
    rc = 0;
done:
    xnpu_session_free(session);
    free(image.data);
    return rc;
}
