/*
 * devices: lists what this machine can run models on, through xnpu's C ABI (what
 * `xnpu devices` prints): each device's id, its status and what to do about it.
 *
 *   cc -std=c11 -Iffi/include examples/c/devices.c -Ltarget/release -lxnpu_ffi \
 *      -Wl,-rpath,$PWD/target/release -o devices && ./devices
 */
#include <stdio.h>

#include "xnpu.h"

int main(void) {
    XnpuDeviceList *list = NULL;
    XnpuStatus *status = xnpu_devices(&list);
    if (status != NULL) {
        fprintf(stderr, "xnpu_devices failed: %s\n", xnpu_status_message(status));
        xnpu_status_free(status);
        return 1;
    }
    size_t n = xnpu_device_list_count(list);
    printf("%-16s %-24s %s\n", "DEVICE", "STATUS", "HINT");
    for (size_t i = 0; i < n; i++) {
        XnpuDeviceInfo d = {.struct_size = sizeof(XnpuDeviceInfo)};
        status = xnpu_device_list_get(list, i, &d);
        if (status != NULL) {
            fprintf(stderr, "xnpu_device_list_get failed: %s\n", xnpu_status_message(status));
            xnpu_status_free(status);
            xnpu_device_list_free(list);
            return 1;
        }
        printf("%-16s %-24s %s\n", d.id, d.status_text, d.hint);
        if (d.library != NULL) printf("%-16s library %s\n", "", d.library);
    }
    printf("%zu devices, xnpu %s\n", n, xnpu_version());
    xnpu_device_list_free(list);
    return 0;
}
