/*
 * check.c: drives a plugin library through every function of the ABI, the way the server does,
 * and frees every buffer it gets back; meant to run under valgrind (`make check`):
 *
 *     valgrind --error-exitcode=1 --leak-check=full ./check ./libt3_example.so
 *
 * It also throws garbage configurations at check_config and open (a fixed list, every prefix of
 * a valid configuration, and pseudo-random bytes), so that valgrind sees the parser's error paths.
 * Exits 0 when every answer was as expected, 1 (after printing what differed) otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t3000_plugin.h"

static const T3PluginDecl *plugin;
static int failures;

#define EXPECT(cond)                                                                                             \
    do {                                                                                                         \
        if (!(cond)) {                                                                                           \
            fprintf(stderr, "check.c:%d: expected %s\n", __LINE__, #cond);                                       \
            failures++;                                                                                          \
        }                                                                                                        \
    } while (0)

/* Keeps a copy of `buf` as a NUL-terminated string in `text` (at most `size` bytes) and frees it. */
static void take(T3Buf buf, char *text, size_t size) {
    size_t n = buf.len < size - 1 ? buf.len : size - 1;
    if (buf.ptr != NULL && n > 0) {
        memcpy(text, buf.ptr, n);
    }
    text[n] = '\0';
    plugin->free_buf(buf);
}

/* `json[0..len]` in a buffer of exactly `len` bytes (no NUL after it), so that valgrind and the
 * sanitizers see any read past the end. */
static uint8_t *exact_copy(const char *json, size_t len) {
    uint8_t *exact = (uint8_t *)malloc(len > 0 ? len : 1);
    if (exact == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (len > 0) {
        memcpy(exact, json, len);
    }
    return exact;
}

static T3Status check_config(const char *json, size_t len, char *message, size_t size) {
    T3Buf out = {NULL, 0};
    uint8_t *exact = exact_copy(json, len);
    T3Status status = plugin->check_config(exact, len, &out);
    free(exact);
    take(out, message, size);
    return status;
}

static void *open_device(const char *json) {
    T3Buf out = {NULL, 0};
    void *device = NULL;
    T3Status status = plugin->open((const uint8_t *)json, strlen(json), &device, &out);
    plugin->free_buf(out);
    EXPECT(status == T3_STATUS_OK);
    EXPECT(device != NULL);
    return device;
}

static T3Status write_point(void *device, uint32_t point, double value, uint8_t priority) {
    T3Buf out = {NULL, 0};
    T3Status status = plugin->write(device, point, value, priority, &out);
    EXPECT((status == T3_STATUS_OK) == (out.ptr == NULL)); /* a message exactly on errors */
    plugin->free_buf(out);
    return status;
}

static T3Status relinquish_point(void *device, uint32_t point, uint8_t priority) {
    T3Buf out = {NULL, 0};
    T3Status status = plugin->relinquish(device, point, priority, &out);
    plugin->free_buf(out);
    return status;
}

static double read_point(void *device, uint32_t point, uint8_t *quality) {
    T3Buf out = {NULL, 0};
    T3Sample sample;
    T3Status status = plugin->read(device, &point, 1, &sample, &out);
    plugin->free_buf(out);
    EXPECT(status == T3_STATUS_OK);
    EXPECT(sample.point == point);
    *quality = sample.quality;
    return sample.value;
}

static void garbage(void) {
    static const char *const fixed[] = {
        "", " ", "{", "}", "[]", "null", "true", "1", "\"seed\"", "{\"seed\"", "{\"seed\":", "{\"seed\":1",
        "{\"seed\":1,", "{\"seed\":1,}", "{,}", "{\"seed\" 1}", "{seed:1}", "{\"seed\":01}", "{\"seed\":-}",
        "{\"seed\":1.}", "{\"seed\":1e}", "{\"seed\":1e+}", "{\"seed\":1.5}", "{\"seed\":1e400}",
        "{\"seed\":99999999999999999999999999999999}", "{\"seed\":-9223372036854775809}",
        "{\"seed\":9223372036854775808}", "{\"seed\":tru}", "{\"seed\":nul}", "{\"seed\":[1]}",
        "{\"seed\":{\"a\":1}}", "{\"name\":\"\\u\"}", "{\"name\":\"\\uD800\"}", "{\"name\":\"\\uDC00\"}",
        "{\"name\":\"\\uD800\\u0041\"}", "{\"name\":\"\\x\"}", "{\"name\":\"a\nb\"}", "{\"name\":\"\xff\"}",
        "{\"name\":\"\xc0\xaf\"}", "{\"name\":\"\xed\xa0\x80\"}", "{\"name\":\"\xf4\x90\x80\x80\"}",
        "{\"name\":\"\xe2\x82\"}", "{\"\\u0000\":1}", "{\"fail_reads\":1}", "{\"port\":0}", "{\"port\":65536}",
        "{\"retries\":-1}", "{\"seed\":1}{}", "{\"seed\":1} x", "{\"seed\":1,\"seed\":2}", "{\"nope\":null}",
        /* cut short right inside a token: any read past the end shows */
        "{\"name\":\"\\u12", "{\"name\":\"\\uD800\\u", "{\"name\":\"\\uD800\\", "{\"name\":\"\\",
        "{\"name\":\"\xe2\x82", "{\"name\":\"\xf0", "{\"seed\":1e", "{\"seed\":-", "{\"seed\":0.",
        "{\"seed\":tr", "{\"seed\":n", "{\"seed\":f", "{\"se", "{\"",
    };
    static const char valid[] =
        "{\"name\":\"AHU \\u00e9\\ud83d\\ude00\",\"ip_address\":\"127.0.0.1\",\"port\":47808,"
        "\"timeout_ms\":1000,\"retries\":2,\"seed\":-42,\"fail_reads\":false}";
    char message[512];
    unsigned long state = 12345;
    size_t i, j;
    for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        T3Buf out = {NULL, 0};
        void *device = NULL;
        size_t len = strlen(fixed[i]);
        uint8_t *exact = exact_copy(fixed[i], len);
        EXPECT(check_config(fixed[i], len, message, sizeof message) == T3_STATUS_CONFIG);
        EXPECT(strncmp(message, "{\"key\":", 7) == 0);
        EXPECT(plugin->open(exact, len, &device, &out) == T3_STATUS_CONFIG);
        EXPECT(device == NULL);
        plugin->free_buf(out);
        free(exact);
    }
    EXPECT(check_config(valid, strlen(valid), message, sizeof message) == T3_STATUS_OK);
    for (i = 0; i < sizeof valid - 1; i++) {
        EXPECT(check_config(valid, i, message, sizeof message) == T3_STATUS_CONFIG);
    }
    for (i = 0; i < 3000; i++) {
        char bytes[96];
        size_t len;
        state = state * 6364136223846793005UL + 1442695040888963407UL;
        len = (size_t)(state >> 33) % sizeof bytes;
        memcpy(bytes, valid, len);
        for (j = 0; j < len; j++) {
            state = state * 6364136223846793005UL + 1442695040888963407UL;
            if ((state >> 60) < 4) {
                bytes[j] = (char)(state >> 40); /* mostly the valid text, some bytes changed */
            }
        }
        (void)check_config(bytes, len, message, sizeof message);
    }
    /* Null pointers the server never passes must not crash either. */
    EXPECT(plugin->check_config(NULL, 0, NULL) == T3_STATUS_CONFIG);
    EXPECT(plugin->check_config(NULL, 10, NULL) == T3_STATUS_CONFIG);
}

int main(int argc, char **argv) {
    void *library;
    const T3PluginDecl *(*declare)(void);
    char text[4096];
    T3Buf out = {NULL, 0};
    void *device;
    uint8_t quality;
    uint32_t points[6] = {0, 1, 2, 3, 4, 99};
    T3Sample samples[6];
    size_t i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s ./libt3_example.so\n", argv[0]);
        return 2;
    }
    library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 2;
    }
    *(void **)(&declare) = dlsym(library, T3_DECLARE_SYMBOL);
    if (declare == NULL) {
        fprintf(stderr, "%s has no %s\n", argv[1], T3_DECLARE_SYMBOL);
        return 2;
    }
    plugin = declare();
    EXPECT(plugin->abi_major == T3_ABI_MAJOR);
    EXPECT(plugin->size == sizeof(T3PluginDecl));
    EXPECT(strcmp(plugin->name, "example-c") == 0);

    EXPECT(plugin->describe(&out) == T3_STATUS_OK);
    take(out, text, sizeof text);
    EXPECT(strstr(text, "\"fail_reads\"") != NULL);
    EXPECT(plugin->describe(NULL) == T3_STATUS_INVALID);

    out.ptr = NULL;
    out.len = 0;
    EXPECT(plugin->discover((const uint8_t *)"{}", 2, &out) == T3_STATUS_OK);
    take(out, text, sizeof text);
    EXPECT(text[0] == '[');

    garbage();

    device = open_device("{\"name\":\"AHU-1\",\"seed\":7}");
    out.ptr = NULL;
    out.len = 0;
    EXPECT(plugin->points(device, &out) == T3_STATUS_OK);
    take(out, text, sizeof text);
    EXPECT(strstr(text, "\"Supply Setpoint\"") != NULL);

    EXPECT(read_point(device, 1, &quality) == 21.0);
    EXPECT(quality == T3_QUALITY_GOOD);
    EXPECT(write_point(device, 1, 25.0, 8) == T3_STATUS_OK);
    EXPECT(write_point(device, 1, 12.0, 16) == T3_STATUS_OK);
    EXPECT(read_point(device, 1, &quality) == 25.0);
    EXPECT(relinquish_point(device, 1, 8) == T3_STATUS_OK);
    EXPECT(read_point(device, 1, &quality) == 12.0);
    EXPECT(relinquish_point(device, 1, 16) == T3_STATUS_OK);
    EXPECT(read_point(device, 1, &quality) == 21.0);
    EXPECT(write_point(device, 1, 35.0, 8) == T3_STATUS_INVALID);
    EXPECT(write_point(device, 2, 0.5, 8) == T3_STATUS_INVALID);
    EXPECT(write_point(device, 3, 5.0, 8) == T3_STATUS_INVALID);
    EXPECT(write_point(device, 1, 20.0, 0) == T3_STATUS_INVALID);
    EXPECT(write_point(device, 1, 20.0, 17) == T3_STATUS_INVALID);
    EXPECT(write_point(device, 0, 20.0, 8) == T3_STATUS_UNSUPPORTED);
    EXPECT(write_point(device, 9, 20.0, 8) == T3_STATUS_INVALID);
    EXPECT(relinquish_point(device, 9, 8) == T3_STATUS_INVALID);

    out.ptr = NULL;
    out.len = 0;
    EXPECT(plugin->read(device, points, 6, samples, &out) == T3_STATUS_OK);
    EXPECT(out.ptr == NULL);
    for (i = 0; i < 6; i++) {
        EXPECT(samples[i].point == points[i]);
        EXPECT((samples[i].quality == T3_QUALITY_GOOD) == (points[i] < 4));
    }
    EXPECT(plugin->read(device, NULL, 1, samples, NULL) == T3_STATUS_INVALID);

    out.ptr = NULL;
    out.len = 0;
    EXPECT(plugin->subscribe(device, points, 1, NULL, NULL, &out) == T3_STATUS_UNSUPPORTED);
    plugin->free_buf(out);

    out.ptr = NULL;
    out.len = 0;
    EXPECT(plugin->health(device, &out) == T3_STATUS_OK);
    take(out, text, sizeof text);
    EXPECT(strstr(text, "\"connected\":true") != NULL);
    plugin->close(device);

    device = open_device("{\"fail_reads\":true}");
    out.ptr = NULL;
    out.len = 0;
    EXPECT(plugin->read(device, points, 2, samples, &out) == T3_STATUS_UNREACHABLE);
    take(out, text, sizeof text);
    EXPECT(strstr(text, "did not answer") != NULL);
    EXPECT(samples[0].quality == T3_QUALITY_BAD_COMM_FAILURE);
    plugin->close(device);
    plugin->close(NULL);
    EXPECT(plugin->points(NULL, NULL) == T3_STATUS_INVALID);

    dlclose(library);
    if (failures != 0) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
