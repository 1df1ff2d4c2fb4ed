/*
 * example.c: a t3000 protocol plugin in C99, protocol "example-c".
 *
 * It simulates one small air handler per device, without any network:
 *   0 Outside Temp     analog °C, read-only, a daily triangle wave 5 .. 20 °C (see outside_temp)
 *   1 Supply Setpoint  analog °C, writable 10 .. 30, relinquish default 21
 *   2 Fan              digital Off/On, writable, relinquish default 0 (Off)
 *   3 Mode             multistate Off/Heat/Cool/Auto (1 .. 4), writable, relinquish default 1 (Off)
 * Each writable point keeps a 16-level priority array: write sets a slot, relinquish clears it, and
 * the point's value is the highest-priority (lowest-numbered) slot set, else its default.
 *
 * Configuration keys (a flat JSON object): "seed" (integer, shifts the outside temperature curve
 * by seed seconds), "fail_reads" (boolean, default false: every read answers
 * T3_STATUS_UNREACHABLE, as an offline device would), and the server's own "name", "ip_address",
 * "port", "timeout_ms" and "retries", which are accepted and checked for type only. Any other key is
 * refused, naming it.
 *
 * Build: cc -std=c99 -pedantic -shared -fPIC -O2 -Wall -Wextra -Werror -I../abi \
 *            -o libt3_example.so example.c   (or `make`; see README.md)
 *
 * Rules this file keeps (t3000_plugin.h): every buffer it returns is malloc'd and freed by
 * free_buf; all state is in the device handle, so different devices may be used from different
 * threads at once; describe, check_config and discover touch no state at all; nothing here can
 * longjmp or unwind.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h> /* NAN only: no libm function is called */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "t3000_plugin.h"

#if defined(_WIN32)
#define EXAMPLE_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define EXAMPLE_EXPORT __attribute__((visibility("default")))
#else
#define EXAMPLE_EXPORT
#endif

#define EXAMPLE_NAME "example-c"
#define EXAMPLE_VERSION "1.0.0"
#define DEGREES_C "\xC2\xB0" "C" /* °C in UTF-8 */

/* ---------------------------------------------------------------------------------------------
 * Growing byte buffers: every answer is built in one and handed to the server as a T3Buf.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char *ptr;
    size_t len;
    size_t cap;
    int failed; /* an allocation failed: the contents are incomplete */
} Text;

static void text_reserve(Text *t, size_t extra) {
    size_t want;
    char *grown;
    if (t->failed) {
        return;
    }
    if (extra > SIZE_MAX - t->len - 1) {
        t->failed = 1;
        return;
    }
    want = t->len + extra + 1;
    if (want <= t->cap) {
        return;
    }
    if (t->cap > SIZE_MAX / 2) {
        t->failed = 1;
        return;
    }
    if (want < t->cap * 2) {
        want = t->cap * 2;
    }
    if (want < 64) {
        want = 64;
    }
    grown = (char *)realloc(t->ptr, want);
    if (grown == NULL) {
        t->failed = 1;
        return;
    }
    t->ptr = grown;
    t->cap = want;
}

static void text_put(Text *t, const char *s, size_t n) {
    text_reserve(t, n);
    if (t->failed) {
        return;
    }
    if (n > 0) {
        memcpy(t->ptr + t->len, s, n);
    }
    t->len += n;
    t->ptr[t->len] = '\0';
}

static void text_puts(Text *t, const char *s) {
    text_put(t, s, strlen(s));
}

static void text_printf(Text *t, const char *fmt, ...) {
    va_list args;
    int n;
    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0) {
        t->failed = 1;
        return;
    }
    text_reserve(t, (size_t)n);
    if (t->failed) {
        return;
    }
    va_start(args, fmt);
    vsnprintf(t->ptr + t->len, (size_t)n + 1, fmt, args);
    va_end(args);
    t->len += (size_t)n;
}

/* `s[0..n]` (valid UTF-8) as a JSON string literal. */
static void text_json_string(Text *t, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i;
    text_put(t, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2];
            esc[0] = '\\';
            esc[1] = (char)c;
            text_put(t, esc, 2);
        } else if (c == '\n') {
            text_put(t, "\\n", 2);
        } else if (c == '\r') {
            text_put(t, "\\r", 2);
        } else if (c == '\t') {
            text_put(t, "\\t", 2);
        } else if (c < 0x20) {
            char esc[6];
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            text_put(t, esc, 6);
        } else {
            text_put(t, (const char *)&s[i], 1);
        }
    }
    text_put(t, "\"", 1);
}

static void text_free(Text *t) {
    free(t->ptr);
    t->ptr = NULL;
    t->len = t->cap = 0;
}

/* Hands the text to the server in `*out` (or drops it when there is no `out`) and returns
 * `status`; T3_STATUS_INTERNAL, with no message, when memory ran out while building it. */
static T3Status text_finish(Text *t, T3Buf *out, T3Status status) {
    if (t->failed) {
        text_free(t);
        return T3_STATUS_INTERNAL;
    }
    if (out == NULL || t->ptr == NULL) {
        text_free(t);
        return status;
    }
    out->ptr = (uint8_t *)t->ptr;
    out->len = t->len;
    t->ptr = NULL;
    t->len = t->cap = 0;
    return status;
}

/* An error `status` with the message `fmt, ...` in `*out`. */
static T3Status fail(T3Buf *out, T3Status status, const char *fmt, ...) {
    Text t = {NULL, 0, 0, 0};
    va_list args;
    int n;
    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0) {
        return status;
    }
    text_reserve(&t, (size_t)n);
    if (!t.failed) {
        va_start(args, fmt);
        vsnprintf(t.ptr, (size_t)n + 1, fmt, args);
        va_end(args);
        t.len = (size_t)n;
    }
    (void)text_finish(&t, out, status); /* without memory for the message, the status alone */
    return status;
}

/* T3_STATUS_CONFIG with {"key": key, "message": message} in `*out`. */
static T3Status config_error(T3Buf *out, const char *key, size_t key_len, const char *message) {
    Text t = {NULL, 0, 0, 0};
    text_puts(&t, "{\"key\":");
    text_json_string(&t, key, key_len);
    text_puts(&t, ",\"message\":");
    text_json_string(&t, message, strlen(message));
    text_puts(&t, "}");
    (void)text_finish(&t, out, T3_STATUS_CONFIG); /* without memory for the message, the status alone */
    return T3_STATUS_CONFIG;
}

/* ---------------------------------------------------------------------------------------------
 * A JSON reader for what configuration is: one flat object whose values are strings, numbers,
 * booleans or null. It never reads past `len`, never recurses, and refuses anything else with
 * a message saying where.
 * ------------------------------------------------------------------------------------------- */

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING } JType;

typedef struct {
    JType type;
    int boolean;
    int is_integer; /* a number written without fraction or exponent */
    int in_range;   /* ... and it fits in int64_t */
    int64_t integer;
    Text string; /* J_STRING: decoded, valid UTF-8, NUL-terminated (may hold \u0000) */
} JValue;

typedef struct {
    const uint8_t *s;
    size_t len;
    size_t pos;
    char why[96]; /* the syntax error, when a function returns -1 */
} JReader;

static int j_error(JReader *r, const char *what) {
    snprintf(r->why, sizeof r->why, "invalid JSON at byte %lu: %s", (unsigned long)r->pos, what);
    return -1;
}

static void j_space(JReader *r) {
    while (r->pos < r->len) {
        uint8_t c = r->s[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        r->pos++;
    }
}

/* The length of the UTF-8 sequence at s[0..n], or 0 when it is not valid UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF are not). */
static size_t utf8_length(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) {
            return 0;
        }
        if (c == 0xE0 && s[1] < 0xA0) {
            return 0; /* overlong */
        }
        if (c == 0xED && s[1] >= 0xA0) {
            return 0; /* a surrogate */
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) {
            return 0;
        }
        if (c == 0xF0 && s[1] < 0x90) {
            return 0; /* overlong */
        }
        if (c == 0xF4 && s[1] >= 0x90) {
            return 0; /* past U+10FFFF */
        }
        return 4;
    }
    return 0;
}

static void utf8_put(Text *t, uint32_t cp) {
    char b[4];
    if (cp < 0x80) {
        b[0] = (char)cp;
        text_put(t, b, 1);
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        text_put(t, b, 2);
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        text_put(t, b, 3);
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        text_put(t, b, 4);
    }
}

static int j_hex4(JReader *r, uint32_t *out) {
    uint32_t v = 0;
    int i;
    if (r->len - r->pos < 4) {
        return j_error(r, "a \\u escape needs four hex digits");
    }
    for (i = 0; i < 4; i++) {
        uint8_t c = r->s[r->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t)(c - 'A' + 10);
        } else {
            return j_error(r, "a \\u escape needs four hex digits");
        }
    }
    r->pos += 4;
    *out = v;
    return 0;
}

/* A string starting at the opening quote, decoded into `out` (which the caller frees). */
static int j_string(JReader *r, Text *out) {
    r->pos++; /* the opening quote */
    for (;;) {
        uint8_t c;
        if (r->pos >= r->len) {
            return j_error(r, "a string is not closed");
        }
        c = r->s[r->pos];
        if (c == '"') {
            r->pos++;
            text_put(out, "", 0); /* an empty string still gets its NUL */
            return out->failed ? j_error(r, "out of memory") : 0;
        }
        if (c < 0x20) {
            return j_error(r, "a control character in a string");
        }
        if (c == '\\') {
            uint8_t e;
            r->pos++;
            if (r->pos >= r->len) {
                return j_error(r, "a string is not closed");
            }
            e = r->s[r->pos++];
            switch (e) {
            case '"': text_put(out, "\"", 1); break;
            case '\\': text_put(out, "\\", 1); break;
            case '/': text_put(out, "/", 1); break;
            case 'b': text_put(out, "\b", 1); break;
            case 'f': text_put(out, "\f", 1); break;
            case 'n': text_put(out, "\n", 1); break;
            case 'r': text_put(out, "\r", 1); break;
            case 't': text_put(out, "\t", 1); break;
            case 'u': {
                uint32_t cp, low;
                if (j_hex4(r, &cp) != 0) {
                    return -1;
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return j_error(r, "a lone low surrogate in a \\u escape");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (r->len - r->pos < 2 || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u') {
                        return j_error(r, "a high surrogate without its low surrogate");
                    }
                    r->pos += 2;
                    if (j_hex4(r, &low) != 0) {
                        return -1;
                    }
                    if (low < 0xDC00 || low > 0xDFFF) {
                        return j_error(r, "a high surrogate without its low surrogate");
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                utf8_put(out, cp);
                break;
            }
            default:
                r->pos--;
                return j_error(r, "an unknown escape in a string");
            }
        } else {
            size_t n = utf8_length(r->s + r->pos, r->len - r->pos);
            if (n == 0) {
                return j_error(r, "a string is not valid UTF-8");
            }
            text_put(out, (const char *)r->s + r->pos, n);
            r->pos += n;
        }
        if (out->failed) {
            return j_error(r, "out of memory");
        }
    }
}

static int j_digit(JReader *r) {
    return r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9';
}

/* A number as JSON writes it; integers (no fraction, no exponent) are also converted, noting
 * whether they fit in int64_t. */
static int j_number(JReader *r, JValue *v) {
    int negative = 0;
    uint64_t magnitude = 0;
    int overflow = 0;
    v->type = J_NUMBER;
    v->is_integer = 1;
    if (r->s[r->pos] == '-') {
        negative = 1;
        r->pos++;
    }
    if (!j_digit(r)) {
        return j_error(r, "a number needs a digit");
    }
    if (r->s[r->pos] == '0') {
        r->pos++;
        if (j_digit(r)) {
            return j_error(r, "a number cannot start with 0");
        }
    } else {
        while (j_digit(r)) {
            uint64_t d = (uint64_t)(r->s[r->pos] - '0');
            if (magnitude > (UINT64_MAX - d) / 10) {
                overflow = 1;
            } else {
                magnitude = magnitude * 10 + d;
            }
            r->pos++;
        }
    }
    if (r->pos < r->len && r->s[r->pos] == '.') {
        r->pos++;
        v->is_integer = 0;
        if (!j_digit(r)) {
            return j_error(r, "a fraction needs a digit");
        }
        while (j_digit(r)) {
            r->pos++;
        }
    }
    if (r->pos < r->len && (r->s[r->pos] == 'e' || r->s[r->pos] == 'E')) {
        r->pos++;
        v->is_integer = 0;
        if (r->pos < r->len && (r->s[r->pos] == '+' || r->s[r->pos] == '-')) {
            r->pos++;
        }
        if (!j_digit(r)) {
            return j_error(r, "an exponent needs a digit");
        }
        while (j_digit(r)) {
            r->pos++;
        }
    }
    if (v->is_integer && !overflow) {
        if (!negative && magnitude <= (uint64_t)INT64_MAX) {
            v->in_range = 1;
            v->integer = (int64_t)magnitude;
        } else if (negative && magnitude <= (uint64_t)INT64_MAX + 1) {
            v->in_range = 1;
            v->integer = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
        }
    }
    return 0;
}

static int j_literal(JReader *r, const char *word) {
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0) {
        return j_error(r, "an unknown word (expected a string, number, true, false or null)");
    }
    r->pos += n;
    return 0;
}

/* Called for each member of the object; returns T3_STATUS_OK, or an error it put in `out`. */
typedef T3Status (*MemberFn)(void *ctx, const char *key, size_t key_len, const JValue *value, T3Buf *out);

/* Reads `s[0..len]` as one flat JSON object, calling `member` for each key in order. Returns
 * T3_STATUS_OK or T3_STATUS_CONFIG with {"key", "message"} in `out` (key "" for a syntax error
 * outside any member). */
static T3Status read_object(const uint8_t *s, size_t len, MemberFn member, void *ctx, T3Buf *out) {
    JReader r;
    Text key = {NULL, 0, 0, 0};
    JValue value;
    T3Status status = T3_STATUS_OK;
    memset(&r, 0, sizeof r);
    memset(&value, 0, sizeof value);
    r.s = s;
    r.len = s == NULL ? 0 : len;
    j_space(&r);
    if (r.pos >= r.len || r.s[r.pos] != '{') {
        j_error(&r, "the configuration must be a JSON object");
        return config_error(out, "", 0, r.why);
    }
    r.pos++;
    j_space(&r);
    if (r.pos < r.len && r.s[r.pos] == '}') {
        r.pos++;
    } else {
        for (;;) {
            uint8_t c;
            text_free(&key);
            text_free(&value.string);
            memset(&value, 0, sizeof value);
            j_space(&r);
            if (r.pos >= r.len || r.s[r.pos] != '"') {
                j_error(&r, "expected a key in double quotes");
                status = config_error(out, "", 0, r.why);
                goto done;
            }
            if (j_string(&r, &key) != 0) {
                status = config_error(out, "", 0, r.why);
                goto done;
            }
            j_space(&r);
            if (r.pos >= r.len || r.s[r.pos] != ':') {
                j_error(&r, "expected ':' after a key");
                status = config_error(out, key.ptr, key.len, r.why);
                goto done;
            }
            r.pos++;
            j_space(&r);
            if (r.pos >= r.len) {
                j_error(&r, "expected a value");
                status = config_error(out, key.ptr, key.len, r.why);
                goto done;
            }
            c = r.s[r.pos];
            if (c == '"') {
                value.type = J_STRING;
                if (j_string(&r, &value.string) != 0) {
                    status = config_error(out, key.ptr, key.len, r.why);
                    goto done;
                }
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (j_number(&r, &value) != 0) {
                    status = config_error(out, key.ptr, key.len, r.why);
                    goto done;
                }
            } else if (c == 't' || c == 'f') {
                value.type = J_BOOL;
                value.boolean = c == 't';
                if (j_literal(&r, c == 't' ? "true" : "false") != 0) {
                    status = config_error(out, key.ptr, key.len, r.why);
                    goto done;
                }
            } else if (c == 'n') {
                value.type = J_NULL;
                if (j_literal(&r, "null") != 0) {
                    status = config_error(out, key.ptr, key.len, r.why);
                    goto done;
                }
            } else if (c == '{' || c == '[') {
                status = config_error(out, key.ptr, key.len,
                                      "must be a string, number, boolean or null, not an object or array");
                goto done;
            } else {
                j_error(&r, "expected a value");
                status = config_error(out, key.ptr, key.len, r.why);
                goto done;
            }
            status = member(ctx, key.ptr, key.len, &value, out);
            if (status != T3_STATUS_OK) {
                goto done;
            }
            j_space(&r);
            if (r.pos < r.len && r.s[r.pos] == ',') {
                r.pos++;
                continue;
            }
            if (r.pos < r.len && r.s[r.pos] == '}') {
                r.pos++;
                break;
            }
            j_error(&r, "expected ',' or '}'");
            status = config_error(out, "", 0, r.why);
            goto done;
        }
    }
    j_space(&r);
    if (r.pos != r.len) {
        j_error(&r, "text after the object");
        status = config_error(out, "", 0, r.why);
    }
done:
    text_free(&key);
    text_free(&value.string);
    return status;
}

/* ---------------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------------- */

typedef enum { K_NAME, K_IP_ADDRESS, K_PORT, K_TIMEOUT_MS, K_RETRIES, K_SEED, K_FAIL_READS, K_COUNT } KeyId;

static const char *const KEY_NAMES[K_COUNT] = {"name", "ip_address", "port", "timeout_ms", "retries", "seed", "fail_reads"};

typedef struct {
    char *name; /* the device's name, for messages ("" when not given) */
    int64_t seed;
    int fail_reads;
    unsigned seen; /* one bit per KeyId: a key given twice is refused */
} Config;

static void config_free(Config *c) {
    free(c->name);
    c->name = NULL;
}

/* A non-negative integer key no larger than `max`. */
static T3Status config_count(const char *key, const JValue *v, int64_t min, int64_t max, T3Buf *out) {
    char message[96];
    if (v->type == J_NULL) {
        return T3_STATUS_OK;
    }
    if (v->type != J_NUMBER || !v->is_integer || !v->in_range || v->integer < min || v->integer > max) {
        snprintf(message, sizeof message, "must be an integer from %lld to %lld", (long long)min, (long long)max);
        return config_error(out, key, strlen(key), message);
    }
    return T3_STATUS_OK;
}

static T3Status config_member(void *ctx, const char *key, size_t key_len, const JValue *v, T3Buf *out) {
    Config *c = (Config *)ctx;
    int id;
    for (id = 0; id < K_COUNT; id++) {
        if (strlen(KEY_NAMES[id]) == key_len && memcmp(KEY_NAMES[id], key, key_len) == 0) {
            break;
        }
    }
    if (id == K_COUNT) {
        return config_error(out, key, key_len,
                            "is not a key of the example-c protocol (its keys: seed, fail_reads; and the server's "
                            "name, ip_address, port, timeout_ms, retries)");
    }
    key = KEY_NAMES[id];
    if (c->seen & (1u << id)) {
        return config_error(out, key, strlen(key), "is given twice");
    }
    c->seen |= 1u << id;
    switch ((KeyId)id) {
    case K_NAME:
    case K_IP_ADDRESS:
        if (v->type != J_STRING && v->type != J_NULL) {
            return config_error(out, key, strlen(key), "must be a string");
        }
        if (id == K_NAME && v->type == J_STRING) {
            char *copy = (char *)malloc(v->string.len + 1);
            if (copy == NULL) {
                return fail(out, T3_STATUS_INTERNAL, "out of memory");
            }
            memcpy(copy, v->string.ptr, v->string.len + 1);
            free(c->name);
            c->name = copy;
        }
        return T3_STATUS_OK;
    case K_PORT:
        return config_count(key, v, 1, 65535, out);
    case K_TIMEOUT_MS:
        return config_count(key, v, 0, INT64_MAX, out);
    case K_RETRIES:
        return config_count(key, v, 0, INT64_MAX, out);
    case K_SEED:
        if (v->type == J_NULL) {
            return T3_STATUS_OK;
        }
        if (v->type != J_NUMBER || !v->is_integer) {
            return config_error(out, key, strlen(key), "must be an integer");
        }
        if (!v->in_range) {
            return config_error(out, key, strlen(key),
                                "must be an integer from -9223372036854775808 to 9223372036854775807");
        }
        c->seed = v->integer;
        return T3_STATUS_OK;
    case K_FAIL_READS:
        if (v->type == J_NULL) {
            return T3_STATUS_OK;
        }
        if (v->type != J_BOOL) {
            return config_error(out, key, strlen(key), "must be true or false");
        }
        c->fail_reads = v->boolean;
        return T3_STATUS_OK;
    case K_COUNT:
        break;
    }
    return fail(out, T3_STATUS_INTERNAL, "unhandled key");
}

/* Parses a configuration into `c` (freed by the caller with config_free, whatever the result). */
static T3Status config_parse(const uint8_t *config, size_t len, Config *c, T3Buf *out) {
    memset(c, 0, sizeof *c);
    return read_object(config, len, config_member, c, out);
}

/* ---------------------------------------------------------------------------------------------
 * The simulated device
 * ------------------------------------------------------------------------------------------- */

typedef enum { KIND_ANALOG, KIND_DIGITAL, KIND_MULTISTATE } Kind;

typedef struct {
    const char *name;
    const char *description;
    Kind kind;
    const char *units;
    int writable;
    double min, max;            /* analog writable points: the range a write may take */
    const char *states_json;    /* the "states" array */
    const char *address;
    const char *klass;
    double relinquish_default;  /* writable points: the value when no priority is set */
} PointDef;

#define POINT_COUNT 4
#define PRIORITIES 16

static const PointDef POINTS[POINT_COUNT] = {
    {"Outside Temp", "Outside air temperature (simulated: a daily triangle wave, 5 to 20 " DEGREES_C ")",
     KIND_ANALOG, DEGREES_C, 0, 0, 0, "[]", "analog-input,1", "input", 0},
    {"Supply Setpoint", "Supply air temperature setpoint", KIND_ANALOG, DEGREES_C, 1, 10, 30, "[]",
     "analog-value,1", "variable", 21},
    {"Fan", "Supply fan command", KIND_DIGITAL, "", 1, 0, 1, "[\"Off\",\"On\"]", "binary-output,1", "output", 0},
    {"Mode", "Operating mode", KIND_MULTISTATE, "", 1, 1, 4, "[\"Off\",\"Heat\",\"Cool\",\"Auto\"]",
     "multi-state-value,1", "variable", 1},
};

typedef struct {
    double slot[PRIORITIES];
    uint32_t set; /* bit p-1: priority p holds a value */
} PriorityArray;

typedef struct {
    Config config;
    PriorityArray commands[POINT_COUNT];
    uint64_t requests, answered, timeouts, failures;
    int connected;
} Device;

static int64_t now_us(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0; /* 0: the server stamps the sample */
    }
    return (int64_t)ts.tv_sec * 1000000 + (int64_t)(ts.tv_nsec / 1000);
}

/* The outside temperature at `ts_us`: a triangle wave over the UTC day, 5 °C at 00:00, 20 °C at
 * 12:00, shifted by `seed` seconds. Integer arithmetic up to the last step, so it is exact and
 * needs no libm. */
static double outside_temp(int64_t ts_us, int64_t seed) {
    const int64_t day_us = (int64_t)86400 * 1000000;
    int64_t t = ts_us % day_us + (seed % 86400) * 1000000;
    double x;
    t %= day_us;
    if (t < 0) {
        t += day_us;
    }
    x = (double)t / (double)day_us;
    return 5.0 + 15.0 * (x < 0.5 ? 2.0 * x : 2.0 - 2.0 * x);
}

static double point_value(const Device *d, uint32_t point, int64_t ts_us) {
    const PriorityArray *pa = &d->commands[point];
    int p;
    if (!POINTS[point].writable) {
        return outside_temp(ts_us, d->config.seed);
    }
    for (p = 0; p < PRIORITIES; p++) {
        if (pa->set & (1u << p)) {
            return pa->slot[p];
        }
    }
    return POINTS[point].relinquish_default;
}

static const char *device_name(const Device *d) {
    return d->config.name != NULL ? d->config.name : "";
}

/* Checks a command's point and priority; counts a refusal as a failed request. */
static T3Status check_command(Device *d, uint32_t point, uint8_t priority, T3Buf *out) {
    if (point >= POINT_COUNT) {
        d->failures++;
        return fail(out, T3_STATUS_INVALID, "no point %lu: the device has points 0 to %d", (unsigned long)point,
                    POINT_COUNT - 1);
    }
    if (!POINTS[point].writable) {
        d->failures++;
        return fail(out, T3_STATUS_UNSUPPORTED, "%s is read-only", POINTS[point].name);
    }
    if (priority < 1 || priority > PRIORITIES) {
        d->failures++;
        return fail(out, T3_STATUS_INVALID, "priority %u is not 1 to 16", (unsigned)priority);
    }
    return T3_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The ABI's functions
 * ------------------------------------------------------------------------------------------- */

static void example_free_buf(T3Buf buf) {
    free(buf.ptr);
}

static T3Status example_describe(T3Buf *out) {
    Text t = {NULL, 0, 0, 0};
    if (out == NULL) {
        return T3_STATUS_INVALID;
    }
    text_puts(&t,
              "{\"title\":\"Example (C)\","
              "\"description\":\"A simulated air handler written in C: an outside temperature, a supply "
              "setpoint, a fan and a mode, with BACnet-style priority arrays. No network.\","
              "\"discovery\":true,\"writes\":true,\"keys\":["
              "{\"name\":\"seed\",\"type\":\"integer\",\"required\":false,\"default\":null,"
              "\"description\":\"Shifts the simulated outside temperature curve by this many seconds.\"},"
              "{\"name\":\"fail_reads\",\"type\":\"boolean\",\"required\":false,\"default\":false,"
              "\"description\":\"Every read answers that the device did not answer, as an offline device "
              "would.\"}]}");
    return text_finish(&t, out, T3_STATUS_OK);
}

static T3Status example_check_config(const uint8_t *config, size_t len, T3Buf *out) {
    Config c;
    T3Status status = config_parse(config, len, &c, out);
    config_free(&c);
    return status;
}

static T3Status example_open(const uint8_t *config, size_t len, void **device, T3Buf *out) {
    Device *d;
    T3Status status;
    if (device == NULL) {
        return fail(out, T3_STATUS_INVALID, "null device slot");
    }
    d = (Device *)calloc(1, sizeof *d);
    if (d == NULL) {
        return fail(out, T3_STATUS_INTERNAL, "out of memory");
    }
    status = config_parse(config, len, &d->config, out);
    if (status != T3_STATUS_OK) {
        config_free(&d->config);
        free(d);
        return status;
    }
    *device = d;
    return T3_STATUS_OK;
}

static void example_close(void *device) {
    Device *d = (Device *)device;
    if (d == NULL) {
        return;
    }
    config_free(&d->config);
    free(d);
}

static T3Status example_points(void *device, T3Buf *out) {
    Device *d = (Device *)device;
    Text t = {NULL, 0, 0, 0};
    int i;
    if (d == NULL) {
        return fail(out, T3_STATUS_INVALID, "null device handle");
    }
    d->requests++;
    text_puts(&t, "[");
    for (i = 0; i < POINT_COUNT; i++) {
        const PointDef *p = &POINTS[i];
        static const char *const kinds[] = {"analog", "digital", "multistate"};
        text_puts(&t, i == 0 ? "{\"name\":" : ",{\"name\":");
        text_json_string(&t, p->name, strlen(p->name));
        text_puts(&t, ",\"description\":");
        text_json_string(&t, p->description, strlen(p->description));
        text_printf(&t, ",\"kind\":\"%s\",\"units\":", kinds[p->kind]);
        text_json_string(&t, p->units, strlen(p->units));
        text_printf(&t, ",\"writable\":%s", p->writable ? "true" : "false");
        if (p->kind == KIND_ANALOG && p->writable) {
            text_printf(&t, ",\"min\":%d,\"max\":%d", (int)p->min, (int)p->max);
        } else {
            text_puts(&t, ",\"min\":null,\"max\":null");
        }
        text_printf(&t, ",\"states\":%s,\"address\":\"%s\",\"class\":\"%s\"}", p->states_json, p->address,
                    p->klass);
    }
    text_puts(&t, "]");
    d->answered++;
    d->connected = 1;
    return text_finish(&t, out, T3_STATUS_OK);
}

static T3Status example_read(void *device, const uint32_t *points, size_t n, T3Sample *samples, T3Buf *out) {
    Device *d = (Device *)device;
    int64_t ts;
    size_t i;
    if (d == NULL) {
        return fail(out, T3_STATUS_INVALID, "null device handle");
    }
    if (n == 0) {
        return T3_STATUS_OK;
    }
    if (points == NULL || samples == NULL) {
        return fail(out, T3_STATUS_INVALID, "null point or sample array");
    }
    d->requests++;
    ts = now_us();
    for (i = 0; i < n; i++) {
        memset(&samples[i], 0, sizeof samples[i]);
        samples[i].point = points[i];
        samples[i].ts_us = ts;
        samples[i].value = NAN;
        samples[i].quality = T3_QUALITY_BAD_COMM_FAILURE;
    }
    if (d->config.fail_reads) {
        d->timeouts++;
        d->connected = 0;
        return fail(out, T3_STATUS_UNREACHABLE, "device \"%s\" did not answer (fail_reads is set)", device_name(d));
    }
    for (i = 0; i < n; i++) {
        if (points[i] >= POINT_COUNT) {
            samples[i].value = NAN;
            samples[i].quality = T3_QUALITY_BAD_CONFIG_ERROR;
        } else {
            samples[i].value = point_value(d, points[i], ts);
            samples[i].quality = T3_QUALITY_GOOD;
        }
    }
    d->answered++;
    d->connected = 1;
    return T3_STATUS_OK;
}

static T3Status example_write(void *device, uint32_t point, double value, uint8_t priority, T3Buf *out) {
    Device *d = (Device *)device;
    const PointDef *p;
    T3Status status;
    if (d == NULL) {
        return fail(out, T3_STATUS_INVALID, "null device handle");
    }
    d->requests++;
    status = check_command(d, point, priority, out);
    if (status != T3_STATUS_OK) {
        return status;
    }
    p = &POINTS[point];
    /* `value != value` is NaN; the comparisons below are false for NaN, so it cannot pass. */
    if (!(value >= p->min && value <= p->max) || (p->kind != KIND_ANALOG && value != (double)(int)value)) {
        d->failures++;
        switch (p->kind) {
        case KIND_ANALOG:
            return fail(out, T3_STATUS_INVALID, "%s takes %g to %g " DEGREES_C ", not %g", p->name, p->min, p->max,
                        value);
        case KIND_DIGITAL:
            return fail(out, T3_STATUS_INVALID, "%s takes 0 (Off) or 1 (On), not %g", p->name, value);
        case KIND_MULTISTATE:
            return fail(out, T3_STATUS_INVALID, "%s takes a state from 1 to 4, not %g", p->name, value);
        }
    }
    d->commands[point].slot[priority - 1] = value;
    d->commands[point].set |= 1u << (priority - 1);
    d->answered++;
    d->connected = 1;
    return T3_STATUS_OK;
}

static T3Status example_relinquish(void *device, uint32_t point, uint8_t priority, T3Buf *out) {
    Device *d = (Device *)device;
    T3Status status;
    if (d == NULL) {
        return fail(out, T3_STATUS_INVALID, "null device handle");
    }
    d->requests++;
    status = check_command(d, point, priority, out);
    if (status != T3_STATUS_OK) {
        return status;
    }
    /* Relinquishing a priority that holds nothing is not an error (as in BACnet). */
    d->commands[point].set &= ~(1u << (priority - 1));
    d->commands[point].slot[priority - 1] = 0;
    d->answered++;
    d->connected = 1;
    return T3_STATUS_OK;
}

static T3Status example_health(void *device, T3Buf *out) {
    Device *d = (Device *)device;
    Text t = {NULL, 0, 0, 0};
    if (d == NULL) {
        return fail(out, T3_STATUS_INVALID, "null device handle");
    }
    text_printf(&t, "{\"connected\":%s,\"requests\":%llu,\"answered\":%llu,\"timeouts\":%llu,\"failures\":%llu}",
                d->connected ? "true" : "false", (unsigned long long)d->requests, (unsigned long long)d->answered,
                (unsigned long long)d->timeouts, (unsigned long long)d->failures);
    return text_finish(&t, out, T3_STATUS_OK);
}

/* Discovery finds the one simulated device, whatever the request says (it takes no options). */
static T3Status example_discover(const uint8_t *request, size_t len, T3Buf *out) {
    Text t = {NULL, 0, 0, 0};
    (void)request;
    (void)len;
    text_puts(&t, "[{\"name\":\"Example AHU\",\"address\":\"simulated\",\"model\":\"example-c simulator\","
                  "\"vendor\":\"t3000\",\"config\":{\"seed\":0}}]");
    return text_finish(&t, out, T3_STATUS_OK);
}

static T3Status example_subscribe(void *device, const uint32_t *points, size_t n, T3PushFn push, void *ctx,
                                  T3Buf *out) {
    (void)device;
    (void)points;
    (void)n;
    (void)push;
    (void)ctx;
    return fail(out, T3_STATUS_UNSUPPORTED, "example-c does not push values: poll it");
}

static const T3PluginDecl DECLARATION = {
    .abi_major = T3_ABI_MAJOR,
    .abi_minor = T3_ABI_MINOR,
    .size = (uint32_t)sizeof(T3PluginDecl),
    .name = EXAMPLE_NAME,
    .version = EXAMPLE_VERSION,
    .free_buf = example_free_buf,
    .describe = example_describe,
    .check_config = example_check_config,
    .open = example_open,
    .close = example_close,
    .points = example_points,
    .read = example_read,
    .write = example_write,
    .relinquish = example_relinquish,
    .health = example_health,
    .discover = example_discover,
    .subscribe = example_subscribe,
};

EXAMPLE_EXPORT const T3PluginDecl *t3000_plugin_declare(void) {
    return &DECLARATION;
}
