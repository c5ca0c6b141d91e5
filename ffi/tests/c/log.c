/*
 * log: where xnpu's warnings go from C (tests/log.rs compiles and runs it against
 * libxnpu_ffi.so, whose copy of `tracing` is its own).
 *
 *   log sessions MODEL FILE   FILE is a plain file, so a compile cache folder below it
 *                             cannot be written: each session made with a new one warns once.
 *                             Without a callback (stderr), with one at WARN (stdout), with
 *                             one at ERROR (nothing), after NULL (stderr again).
 *   log plugins MODEL         Makes a session with the callback installed first: a plugin
 *                             XNPU_PLUGIN_PATH holds that cannot be loaded is reported when
 *                             backends are discovered.
 *
 * Every message the callback receives is printed on stdout as `TAG LEVEL MESSAGE`, TAG being
 * the callback's user_data; every step as `step NAME`.
 */
#include <stdio.h>
#include <string.h>

#include "xnpu.h"

static void print_message(void *user_data, XnpuLogLevel level, const char *message) {
    printf("%s %u %s\n", (const char *)user_data, (unsigned)level, message);
    fflush(stdout);
}

static int check(XnpuStatus *status, const char *what) {
    if (status == NULL) return 0;
    fprintf(stderr, "%s failed: %s\n", what, xnpu_status_message(status));
    xnpu_status_free(status);
    return 1;
}

/* A CPU session whose compile cache is FILE/NAME, freed at once. */
static int session(const char *model, const char *file, const char *name) {
    char cache_dir[4096];
    snprintf(cache_dir, sizeof cache_dir, "%s/%s", file, name);
    XnpuSessionOptions o = {.struct_size = sizeof(XnpuSessionOptions)};
    o.devices = "cpu";
    o.cache_dir = cache_dir;
    XnpuSession *s = NULL;
    printf("step %s\n", name);
    fflush(stdout);
    if (check(xnpu_session_create(model, &o, &s), "xnpu_session_create")) return 1;
    xnpu_session_free(s);
    return 0;
}

static int sessions(const char *model, const char *file) {
    if (session(model, file, "default")) return 1;
    if (check(xnpu_set_log_callback(print_message, "warn", XNPU_LOG_LEVEL_WARN),
              "xnpu_set_log_callback"))
        return 1;
    if (session(model, file, "callback")) return 1;
    if (check(xnpu_set_log_callback(print_message, "error", XNPU_LOG_LEVEL_ERROR),
              "xnpu_set_log_callback"))
        return 1;
    if (session(model, file, "filtered")) return 1;
    if (check(xnpu_set_log_callback(NULL, NULL, XNPU_LOG_LEVEL_OFF), "xnpu_set_log_callback"))
        return 1;
    if (session(model, file, "restored")) return 1;
    XnpuStatus *bad = xnpu_set_log_callback(print_message, "bad", 9);
    printf("step bad level: code %d: %s\n", (int)xnpu_status_code(bad), xnpu_status_message(bad));
    xnpu_status_free(bad);
    return 0;
}

static int plugins(const char *model) {
    if (check(xnpu_set_log_callback(print_message, "warn", XNPU_LOG_LEVEL_WARN),
              "xnpu_set_log_callback"))
        return 1;
    XnpuSessionOptions o = {.struct_size = sizeof(XnpuSessionOptions)};
    o.devices = "cpu";
    o.no_cache = 1;
    XnpuSession *s = NULL;
    printf("step session\n");
    fflush(stdout);
    if (check(xnpu_session_create(model, &o, &s), "xnpu_session_create")) return 1;
    xnpu_session_free(s);
    return check(xnpu_set_log_callback(NULL, NULL, XNPU_LOG_LEVEL_OFF), "xnpu_set_log_callback");
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "sessions") == 0) return sessions(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "plugins") == 0) return plugins(argv[2]);
    fprintf(stderr, "usage: log sessions MODEL FILE | log plugins MODEL\n");
    return 2;
}
