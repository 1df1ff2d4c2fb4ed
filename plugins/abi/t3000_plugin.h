/*
 * t3000_plugin.h: the C ABI of t3000 protocol plugins, version 1.0.
 *
 * The same definitions as the Rust crate t3-plugin-abi (plugins/abi/src/lib.rs), which documents
 * every function and rule in full; a test compiles this header and checks that sizes, offsets and
 * constants agree with the crate.
 *
 * A plugin is a shared library exporting `t3000_plugin_declare`, which returns a pointer to a
 * static T3PluginDecl. Rules of the boundary:
 *  - abi_major must equal T3_ABI_MAJOR or the server refuses the plugin; minor versions only
 *    append optional fields to T3PluginDecl, and `size` says which fields the plugin knows.
 *  - Configuration, point lists, discovery results and health are UTF-8 JSON; samples are
 *    T3Sample records in arrays the server allocates.
 *  - Whoever allocates frees: buffers a plugin returns in a T3Buf are given back through
 *    free_buf; what the server passes in is valid only during the call.
 *  - Every function returns a T3Status; on error it may put a UTF-8 message in `out`
 *    (T3_STATUS_CONFIG: JSON {"key": "...", "message": "..."}). Nothing may unwind or longjmp
 *    out of a function: catch exceptions and answer T3_STATUS_PANIC.
 *  - The server calls one device's functions from one thread at a time; different devices,
 *    describe, check_config and discover may run concurrently. A push callback may be called
 *    from any thread until close returns.
 */
#ifndef T3000_PLUGIN_H
#define T3000_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define T3_ABI_MAJOR 1
#define T3_ABI_MINOR 0
#define T3_DECLARE_SYMBOL "t3000_plugin_declare"

typedef int32_t T3Status;
#define T3_STATUS_OK 0          /* success */
#define T3_STATUS_CONFIG 1      /* configuration refused; out = {"key": "...", "message": "..."} */
#define T3_STATUS_UNREACHABLE 2 /* the device did not answer: counts towards offline */
#define T3_STATUS_DEVICE 3      /* the device answered with an error, reject or abort */
#define T3_STATUS_UNSUPPORTED 4 /* the plugin or the device cannot do this */
#define T3_STATUS_INVALID 5     /* a bad argument: unknown point, impossible value, bad priority */
#define T3_STATUS_PANIC 6       /* the plugin caught a panic or exception inside the call */
#define T3_STATUS_INTERNAL 7    /* anything else inside the plugin */

/* Quality codes of a sample (the byte the server stores). */
#define T3_QUALITY_GOOD 0xC0
#define T3_QUALITY_GOOD_LOCAL_OVERRIDE 0xD8
#define T3_QUALITY_UNCERTAIN 0x40
#define T3_QUALITY_BAD 0x00
#define T3_QUALITY_BAD_CONFIG_ERROR 0x04
#define T3_QUALITY_BAD_DEVICE_FAILURE 0x0C
#define T3_QUALITY_BAD_SENSOR_FAILURE 0x10
#define T3_QUALITY_BAD_COMM_FAILURE 0x18
#define T3_QUALITY_BAD_OUT_OF_SERVICE 0x1C

/* Bytes the plugin allocated; the server frees them with free_buf. */
typedef struct T3Buf {
    uint8_t *ptr;
    size_t len;
} T3Buf;

/* One value of one point: 24 bytes, 8-byte aligned. */
typedef struct T3Sample {
    uint32_t point;      /* index in the list `points` returned */
    uint8_t quality;     /* a T3_QUALITY_* code */
    uint8_t reserved[3]; /* zero */
    double value;        /* NaN with a bad quality when there is no value */
    int64_t ts_us;       /* microseconds since the Unix epoch; 0 = stamped by the server */
} T3Sample;

typedef void (*T3PushFn)(void *ctx, const T3Sample *samples, size_t n);

typedef struct T3PluginDecl {
    uint16_t abi_major;   /* T3_ABI_MAJOR */
    uint16_t abi_minor;   /* T3_ABI_MINOR */
    uint32_t size;        /* sizeof(T3PluginDecl) */
    const char *name;     /* the protocol name devices select: [a-z][a-z0-9-]{0,31}, not modbus-* */
    const char *version;  /* the plugin's own version */
    void (*free_buf)(T3Buf buf);
    /* {"title", "description", "discovery", "writes", "keys": [{"name", "type", "required", "default", "description"}]} */
    T3Status (*describe)(T3Buf *out);
    /* validates a device's configuration (JSON object) without I/O */
    T3Status (*check_config)(const uint8_t *config, size_t len, T3Buf *out);
    /* config: the device's own keys plus name, ip_address, port, timeout_ms, retries; no I/O yet */
    T3Status (*open)(const uint8_t *config, size_t len, void **device, T3Buf *out);
    void (*close)(void *device);
    /* JSON array of {"name", "description", "kind", "units", "writable", "min", "max", "states", "address", "class"} */
    T3Status (*points)(void *device, T3Buf *out);
    /* fills samples[0..n] for points[0..n]; fails only when the device did not answer */
    T3Status (*read)(void *device, const uint32_t *points, size_t n, T3Sample *samples, T3Buf *out);
    /* writes value at priority 1..16 (1 highest) */
    T3Status (*write)(void *device, uint32_t point, double value, uint8_t priority, T3Buf *out);
    /* relinquishes the command at priority */
    T3Status (*relinquish)(void *device, uint32_t point, uint8_t priority, T3Buf *out);
    /* {"connected", "requests", "answered", "timeouts", "failures"} */
    T3Status (*health)(void *device, T3Buf *out);
    /* request: JSON object of discovery options; out: JSON array of {"name", "address", "model", "vendor", "config"} */
    T3Status (*discover)(const uint8_t *request, size_t len, T3Buf *out);
    /* push changes of points[0..n] through push(ctx, ...) until close; T3_STATUS_UNSUPPORTED to be polled */
    T3Status (*subscribe)(void *device, const uint32_t *points, size_t n, T3PushFn push, void *ctx, T3Buf *out);
} T3PluginDecl;

/* The one symbol a plugin exports. */
const T3PluginDecl *t3000_plugin_declare(void);

#ifdef __cplusplus
}
#endif

#endif /* T3000_PLUGIN_H */
