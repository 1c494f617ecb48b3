/*
 * bench/verify-loop.c: the managed core alone, without nginx or a network.
 * Loads ngx_http_oauth_managed.so, builds a policy (signature and exp
 * checks) from a JWKS, verifies every token of a file in turn for N
 * iterations and prints the mean time per nox_jwt_verify call:
 *
 *     verify-loop LIBRARY.so KEYS.jwks TOKENS.txt N
 *     -> "us_per_verify 31.2"
 *
 * bench/run.sh compares it with `openssl speed` to separate what the
 * module adds around the crypto from what the machine adds around nginx.
 */

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_oauth_abi.h"

typedef int32_t (*keyset_load_pt)(const uint8_t *, int32_t, int32_t,
    int64_t *, int32_t *);
typedef int32_t (*policy_create_pt)(int32_t, int64_t, int64_t *);
typedef int32_t (*policy_add_keyset_pt)(int64_t, int64_t);
typedef int32_t (*jwt_verify_pt)(int64_t, const uint8_t *, int32_t, int64_t,
    const int64_t *, int32_t, const nox_buf_t *, int32_t, uint8_t *, int32_t,
    int32_t *, int32_t *, int32_t *);

#define MAX_TOKENS  100000
#define MAX_LINE    16384

static double
now_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
need(void *lib, const char *name)
{
    void  *sym = dlsym(lib, name);

    if (sym == NULL) {
        fprintf(stderr, "verify-loop: no symbol %s\n", name);
        exit(1);
    }
    return sym;
}

int
main(int argc, char **argv)
{
    FILE                  *f;
    void                  *lib;
    char                  *line, **tokens;
    size_t                 n, keys_len, len;
    long                   i, iterations, failures;
    double                 start;
    int32_t                detail, header_len, payload_len;
    int64_t                keyset, policy, now;
    uint8_t               *keys, *out;
    jwt_verify_pt          verify;
    keyset_load_pt         keyset_load;
    policy_create_pt       policy_create;
    policy_add_keyset_pt   policy_add_keyset;

    if (argc != 5) {
        fprintf(stderr, "usage: %s LIBRARY.so KEYS.jwks TOKENS.txt N\n",
                argv[0]);
        return 2;
    }

    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (lib == NULL) {
        fprintf(stderr, "verify-loop: %s\n", dlerror());
        return 1;
    }

    keyset_load = (keyset_load_pt) need(lib, "nox_keyset_load");
    policy_create = (policy_create_pt) need(lib, "nox_policy_create");
    policy_add_keyset = (policy_add_keyset_pt) need(lib,
                                                    "nox_policy_add_keyset");
    verify = (jwt_verify_pt) need(lib, "nox_jwt_verify");

    keys = malloc(NOX_MAX_KEYSET);
    f = fopen(argv[2], "r");
    if (keys == NULL || f == NULL) {
        fprintf(stderr, "verify-loop: cannot read %s\n", argv[2]);
        return 1;
    }
    keys_len = fread(keys, 1, NOX_MAX_KEYSET, f);
    fclose(f);

    if (keyset_load(keys, (int32_t) keys_len, NOX_KEYS_JWKS, &keyset, &detail)
        != NOX_OK
        || policy_create(NOX_POLICY_VALIDATE_EXP | NOX_POLICY_VALIDATE_SIG, 0,
                         &policy) != NOX_OK
        || policy_add_keyset(policy, keyset) != NOX_OK)
    {
        fprintf(stderr, "verify-loop: cannot build the policy\n");
        return 1;
    }

    tokens = malloc(MAX_TOKENS * sizeof(char *));
    line = malloc(MAX_LINE);
    out = malloc(MAX_LINE);
    f = fopen(argv[3], "r");
    if (tokens == NULL || line == NULL || out == NULL || f == NULL) {
        fprintf(stderr, "verify-loop: cannot read %s\n", argv[3]);
        return 1;
    }

    n = 0;
    while (n < MAX_TOKENS && fgets(line, MAX_LINE, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != '\0') {
            tokens[n++] = strdup(line);
        }
    }
    fclose(f);

    if (n == 0) {
        fprintf(stderr, "verify-loop: no tokens in %s\n", argv[3]);
        return 1;
    }

    iterations = atol(argv[4]);
    now = (int64_t) time(NULL);
    failures = 0;

    /* warm-up: the runtime starts, code and key contexts get built */
    for (i = 0; i < 200; i++) {
        len = strlen(tokens[i % n]);
        failures += verify(policy, (uint8_t *) tokens[i % n], (int32_t) len,
                           now, NULL, 0, NULL, 0, out, MAX_LINE, &header_len,
                           &payload_len, &detail) != NOX_OK;
    }

    start = now_seconds();

    for (i = 0; i < iterations; i++) {
        len = strlen(tokens[i % n]);
        failures += verify(policy, (uint8_t *) tokens[i % n], (int32_t) len,
                           now, NULL, 0, NULL, 0, out, MAX_LINE, &header_len,
                           &payload_len, &detail) != NOX_OK;
    }

    printf("us_per_verify %.1f\n",
           (now_seconds() - start) * 1e6 / (double) iterations);

    if (failures) {
        fprintf(stderr, "verify-loop: %ld tokens did not verify\n", failures);
        return 1;
    }

    return 0;
}
