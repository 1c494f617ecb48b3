/*
 * Smoke host for the managed core: dlopens the NativeAOT library the way the
 * shim does (RTLD_NOW | RTLD_NODELETE), checks that every symbol listed in
 * native/exports.txt resolves and that the ABI version matches, then walks
 * each status path once (ok, decisions, NOX_E_ARGUMENT,
 * NOX_E_BUFFER_TOO_SMALL, NOX_E_HANDLE).
 *
 * build: clang -I native/include native/smoke/smoke.c -ldl -o build/smoke
 * run:   build/smoke build/managed/ngx_http_oauth_managed.so [exports.txt]
 *
 * Prints "ok <name>" or "FAIL <name>" per check; exits 1 on any failure.
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_oauth_abi.h"


typedef int32_t (*abi_version_pt)(void);
typedef int32_t (*keyset_load_pt)(const uint8_t *, int32_t, int32_t,
    int64_t *, int32_t *);
typedef int32_t (*free_pt)(int64_t);
typedef int32_t (*json_check_pt)(const uint8_t *, int32_t);
typedef int32_t (*policy_create_pt)(int32_t, int64_t, int64_t *);
typedef int32_t (*policy_add_keyset_pt)(int64_t, int64_t);
typedef int32_t (*policy_add_revocation_pt)(int64_t, int32_t,
    const uint8_t *, int32_t);
typedef int32_t (*policy_set_nested_pt)(int64_t, const uint8_t *, int32_t,
    const uint8_t *, int32_t);
typedef int32_t (*policy_add_rule_pt)(int64_t, int32_t, const uint8_t *,
    int32_t, int32_t, int32_t, const uint8_t *, int32_t);
typedef int32_t (*jwt_verify_pt)(int64_t, const uint8_t *, int32_t, int64_t,
    const int64_t *, int32_t, const nox_buf_t *, int32_t, uint8_t *, int32_t,
    int32_t *, int32_t *, int32_t *);
typedef int32_t (*jwt_check_pt)(int64_t, const uint8_t *, int32_t,
    const uint8_t *, int32_t, int64_t, const nox_buf_t *, int32_t, int32_t *);
typedef int32_t (*policy_set_type_pt)(int64_t, int32_t);
typedef int32_t (*keyset_count_pt)(int64_t, int32_t *, int32_t *);
typedef int32_t (*jwt_verify_ex_pt)(int64_t, const uint8_t *, int32_t,
    int64_t, const int64_t *, int32_t, const nox_buf_t *, int32_t,
    uint8_t *, int32_t, int32_t *, int32_t *);
typedef int32_t (*json_get_pt)(const uint8_t *, int32_t, const uint8_t *,
    int32_t, int32_t, const uint8_t *, int32_t, const uint8_t *, int32_t,
    uint8_t *, int32_t, int32_t *);
typedef int32_t (*json_compact_pt)(const uint8_t *, int32_t, uint8_t *,
    int32_t, int32_t *);
typedef int32_t (*introspect_parse_pt)(const uint8_t *, int32_t, int64_t,
    int64_t *);
typedef int32_t (*exchange_parse_pt)(const uint8_t *, int32_t, uint8_t *,
    int32_t, int32_t *, int32_t *, int32_t *, int64_t *);
typedef int32_t (*token_error_pt)(int32_t, const uint8_t *, int32_t,
    uint8_t *, int32_t, int32_t *);
typedef int32_t (*numeric_date_pt)(const uint8_t *, int32_t, const uint8_t *,
    int32_t, int64_t *);
typedef int32_t (*sha256_pt)(const uint8_t *, int32_t, uint8_t *, int32_t);
typedef int32_t (*cache_seal_pt)(const uint8_t *, int32_t, const uint8_t *,
    int32_t, int64_t, int32_t, const uint8_t *, int32_t, uint8_t *, int32_t,
    int32_t *);
typedef int32_t (*cache_open_pt)(const uint8_t *, int32_t, const uint8_t *,
    int32_t, const uint8_t *, int32_t, uint8_t *, int32_t, int32_t *,
    int64_t *, int32_t *);
typedef int32_t (*keyset_skipped_pt)(int64_t, int32_t, int32_t *, int32_t *,
    uint8_t *, int32_t, int32_t *);
typedef int32_t (*sts_create_pt)(const nox_buf_t *, int32_t, int64_t *,
    int32_t *);
typedef int32_t (*sts_key_pt)(int64_t, const uint8_t *, int32_t,
    const nox_buf_t *, int32_t, uint8_t *, int32_t);
typedef int32_t (*sts_request_pt)(int64_t, const uint8_t *, int32_t,
    const nox_buf_t *, int32_t, int64_t, uint8_t *, int32_t, int32_t *,
    int64_t *);
typedef int32_t (*jwt_issuer_pt)(const uint8_t *, int32_t, uint8_t *,
    int32_t, int32_t *);
typedef int32_t (*policy_set_profile_pt)(int64_t, const uint8_t *, int32_t,
    int32_t, int64_t);
typedef int32_t (*policy_add_audience_pt)(int64_t, const uint8_t *,
    int32_t);
typedef int32_t (*sts_response_pt)(int64_t, int32_t, const uint8_t *,
    int32_t, int64_t, uint8_t *, int32_t, int32_t *, int64_t *);
typedef int32_t (*jws_probe_pt)(const uint8_t *, int32_t, uint8_t *, int32_t,
    int32_t *);


#define S(lit)  (const uint8_t *) (lit), (int32_t) (sizeof(lit) - 1)

/* HS256 key (36 bytes) and a token: {"alg":"HS256","kid":"smoke","typ":"JWT"}
 * {"sub":"alice","exp":2000000000,"roles":["admin","dev"]} */
static const char  jwks[] =
    "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"smoke\",\"alg\":\"HS256\","
    "\"k\":\"c21va2UtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZiEh\"}]}";

static const char  token[] =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6InNtb2tlIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwicm9sZXMiOlsiYWRtaW4iLCJk"
    "ZXYiXX0.Y7HGWRA0VmOoWQhTuW0fDor877zW5i0PuB7HWuxBcsk";

/* keyval PEM public keys: "ed" (Ed25519), "ec" (P-256)
 * and "rsa" (RSA 2048), and a token signed by each:
 * {"alg":...,"kid":...} {"sub":"alice","exp":2000000000} */
static const char  keyval[] =
    "{\"ed\":\"-----BEGIN PUBLIC KEY-----\\n"
    "MCowBQYDK2VwAyEAwKIOsmf9T4lETMaUphR28YJYxpHTcd4/fA3FfXT9gRc=\\n"
    "-----END PUBLIC KEY-----\\n\","
    "\"ec\":\"-----BEGIN PUBLIC KEY-----\\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE81mPSfkXuCpVbnAH+DWP62K7980I\\n"
    "XCOahSMgQhYGKP/msNz5gSAbqTkyf8addug7y11asdU180HvMIoT6tZdKA==\\n"
    "-----END PUBLIC KEY-----\\n\","
    "\"rsa\":\"-----BEGIN PUBLIC KEY-----\\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzfBL/6VBPF3nnMWiEnGX\\n"
    "302QaO0CLM3LiC42o6H3oiQ9qogkCA6FYEW//pGoEFMh5aDcDJ8Glv06Gfkl5cDo\\n"
    "C9hohy/QyNuxCrcVeLjviGj/wdpU0PqtA6OHDVWRP1aBv1n5HhAAemUbeKpo1cuy\\n"
    "CocnR/I3Zw/i72/75KeMLMcDUMrfAcoRKkQZZZ5doava7G5UGjmdZOFvOtfvCyoc\\n"
    "ClD64TgkOSKvshBxERBZWy+1CERgjmU+JIUvV7+YJ6V4Io/Vq+JABW13rtPOi/AS\\n"
    "W5nluOK99nBaqwWeGZtT0ReoB+Jld2BEXalJdVOcsCO9owZB35ZddXcHjn3X+6z/\\n"
    "wwIDAQAB\\n"
    "-----END PUBLIC KEY-----\\n\"}";

static const char  ed_token[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkIn0."
    "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMH0."
    "e6BGl9n2lJnK8APYDPn1oCR-JnYy0-0nZzO2kLElr0obgmKDu3P0cO5GgH6RIeV59acNS_Ea"
    "O4sHjQkGs88rCg";

static const char  ec_token[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjIn0."
    "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMH0."
    "i6XhVErZaD6NfYPuEOo-50M6M--ogNpICmrxvjPovi9CbJ4X9eraVdhAF3MbX1pr9nDUGEDR"
    "d3JFH-uhxrbFOg";

static const char  rsa_token[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYSJ9."
    "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMH0."
    "exo-MNCKRaKCU9CGEVSopS77EKZ-aFjcurjpyyGJ4CqNEU17V9JCYfeBB-2osezztwOa-IQj"
    "Ign--xrRZkedBVtZXfETDIGWKIQf7TrzAuxrX4cyYn54c80JHngWhVTiOEw7kYrtde-dQy5X"
    "tDkNY2ubVGn2EGl1v8wg6k364GuFMm9vMxa-DZl2-T_9AsobjR01wxYdERWWA0TB1OWf7SL6"
    "CqLkoI8zi_Aqbur1nKdOwzcv7pg2B57057SS4Y-jsj_ibTaWc7xpMWjC-Xq2QGza9EIDqcQN"
    "YA66Em8Vzoi_YSuVSpCOUG7iViq8Gebw3skihDlWmJBnMBZNejLKTw";

#define NOW  1700000000

static int  failures;


static void check(int ok, const char *name);
static void *sym(void *lib, const char *name);
static void check_exports(void *lib, const char *path);
static void smoke_sts(void *lib);
static void smoke_providers(void *lib);
static void smoke_jws_probe(void *lib);
static int64_t sts_make(sts_create_pt create, const char **nv, int32_t n,
    int32_t *rc, int32_t *detail);


static void
check(int ok, const char *name)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) {
        failures++;
    }
}


static void *
sym(void *lib, const char *name)
{
    void  *p;

    p = dlsym(lib, name);
    if (p == NULL) {
        printf("FAIL dlsym %s\n", name);
        failures++;
    }
    return p;
}


static void
check_exports(void *lib, const char *path)
{
    char   line[256];
    FILE  *f;
    int    n;
    size_t len;

    f = fopen(path, "r");
    if (f == NULL) {
        check(0, "exports.txt readable");
        return;
    }

    n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        len = strcspn(line, "\r\n \t");
        line[len] = '\0';
        if (len == 0 || line[0] == '#') {
            continue;
        }
        if (dlsym(lib, line) == NULL) {
            printf("FAIL dlsym %s\n", line);
            failures++;
        }
        n++;
    }
    fclose(f);

    check(n > 0, "every symbol in exports.txt resolves");
}


int
main(int argc, char **argv)
{
    void       *lib;
    int64_t     ks, policy, bogus, pem_ks, pem_policy;
    int32_t     rc, detail, hlen, plen, olen;
    uint8_t     out[2048];
    char        tampered[512];
    nox_buf_t   values[2];

    abi_version_pt            abi_version;
    keyset_load_pt            keyset_load;
    free_pt                   keyset_free, policy_free;
    json_check_pt             json_check;
    policy_create_pt          policy_create;
    policy_add_keyset_pt      policy_add_keyset;
    policy_add_revocation_pt  policy_add_revocation;
    policy_set_nested_pt      policy_set_nested;
    policy_add_rule_pt        policy_add_rule;
    jwt_verify_pt             jwt_verify;
    jwt_check_pt              jwt_check;
    policy_set_type_pt        policy_set_type;
    keyset_count_pt           keyset_count;
    int32_t                   nverify, ndecrypt;
    jwt_verify_ex_pt          jwt_verify_ex;
    int32_t                   lens[3];
    json_get_pt               json_get;
    json_compact_pt           json_compact;
    introspect_parse_pt       introspect_parse;
    exchange_parse_pt         exchange_parse;
    token_error_pt            token_error;
    numeric_date_pt           numeric_date;
    sha256_pt                 sha256;
    cache_seal_pt             cache_seal;
    cache_open_pt             cache_open;
    keyset_skipped_pt         keyset_skipped;
    int64_t                   exp, weak;
    int32_t                   kidx, why, kidlen;
    int32_t                   tlen, ylen, ilen;

    if (argc < 2) {
        fprintf(stderr, "usage: %s LIBRARY.so [exports.txt]\n", argv[0]);
        return 2;
    }

    lib = dlopen(argv[1], RTLD_NOW | RTLD_NODELETE);
    if (lib == NULL) {
        printf("FAIL dlopen %s\n", dlerror());
        return 1;
    }
    check(1, "dlopen");

    check_exports(lib, argc > 2 ? argv[2] : "native/exports.txt");

    abi_version = (abi_version_pt) sym(lib, "nox_abi_version");
    keyset_load = (keyset_load_pt) sym(lib, "nox_keyset_load");
    keyset_free = (free_pt) sym(lib, "nox_keyset_free");
    json_check = (json_check_pt) sym(lib, "nox_json_check");
    policy_create = (policy_create_pt) sym(lib, "nox_policy_create");
    policy_add_keyset = (policy_add_keyset_pt)
        sym(lib, "nox_policy_add_keyset");
    policy_add_revocation = (policy_add_revocation_pt)
        sym(lib, "nox_policy_add_revocation");
    policy_set_nested = (policy_set_nested_pt)
        sym(lib, "nox_policy_set_nested");
    policy_add_rule = (policy_add_rule_pt) sym(lib, "nox_policy_add_rule");
    policy_free = (free_pt) sym(lib, "nox_policy_free");
    jwt_verify = (jwt_verify_pt) sym(lib, "nox_jwt_verify");
    jwt_check = (jwt_check_pt) sym(lib, "nox_jwt_check");
    policy_set_type = (policy_set_type_pt) sym(lib, "nox_policy_set_type");
    keyset_count = (keyset_count_pt) sym(lib, "nox_keyset_count");
    jwt_verify_ex = (jwt_verify_ex_pt) sym(lib, "nox_jwt_verify_ex");
    json_get = (json_get_pt) sym(lib, "nox_json_get");
    json_compact = (json_compact_pt) sym(lib, "nox_json_compact");
    introspect_parse = (introspect_parse_pt)
        sym(lib, "nox_introspect_parse");
    exchange_parse = (exchange_parse_pt) sym(lib, "nox_exchange_parse");
    token_error = (token_error_pt) sym(lib, "nox_token_error");
    numeric_date = (numeric_date_pt) sym(lib, "nox_numeric_date");
    sha256 = (sha256_pt) sym(lib, "nox_sha256");
    cache_seal = (cache_seal_pt) sym(lib, "nox_cache_seal");
    cache_open = (cache_open_pt) sym(lib, "nox_cache_open");
    keyset_skipped = (keyset_skipped_pt) sym(lib, "nox_keyset_skipped");

    if (failures) {
        return 1;
    }

    check(abi_version() == NOX_ABI_VERSION, "abi_version");

    /* key sets */

    ks = 0;
    detail = 0;
    rc = keyset_load(S(jwks), NOX_KEYS_JWKS, &ks, &detail);
    check(rc == NOX_OK && ks != 0, "keyset_load ok");

    rc = keyset_load(NULL, 5, NOX_KEYS_JWKS, &bogus, &detail);
    check(rc == NOX_E_ARGUMENT, "keyset_load NULL data is E_ARGUMENT");

    rc = keyset_load(S("{\"keys\":[{\"kty\":\"XYZ\"}]}"), NOX_KEYS_JWKS,
                     &bogus, &detail);
    check(rc == NOX_KEY_UNKNOWN_KTY && detail == 0,
          "keyset_load unknown kty is KEY_UNKNOWN_KTY, detail 0");

    weak = 0;
    rc = keyset_load(S("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"weak\","
                       "\"k\":\"c2hvcnQ\"},{\"kty\":\"oct\",\"kid\":\"ok\","
                       "\"k\":\"c21va2UtdGVzdC1zZWNyZXQtMDEy"
                       "MzQ1Njc4OWFiY2RlZiEh\"}]}"),
                     NOX_KEYS_JWKS, &weak, &detail);
    check(rc == NOX_OK && weak != 0, "keyset_load skips a short HMAC key");
    rc = keyset_skipped(weak, 0, &kidx, &why, out, sizeof(out), &kidlen);
    check(rc == NOX_OK && kidx == 0 && why == NOX_KEY_HMAC_TOO_SHORT
          && kidlen == 4 && memcmp(out, "weak", 4) == 0,
          "keyset_skipped names the key, its reason and kid");
    rc = keyset_skipped(weak, 1, &kidx, &why, out, sizeof(out), &kidlen);
    check(rc == NOX_NOT_FOUND, "keyset_skipped past the last is NOT_FOUND");
    check(keyset_free(weak) == NOX_OK, "keyset_free of the weak set");

    rc = keyset_load(S("[1,2]"), NOX_KEYS_KEYVAL, &bogus, &detail);
    check(rc == NOX_JSON_NOT_OBJECT, "keyset_load array is JSON_NOT_OBJECT");

    /* json helpers */

    check(json_check(S("{\"a\":[1,2,{\"b\":null}]}")) == NOX_OK,
          "json_check ok");
    check(json_check(S("{\"a\":")) == NOX_JSON_INVALID,
          "json_check truncated is JSON_INVALID");
    check(json_check(S("{\"a\":1,\"a\":2}")) == NOX_JSON_INVALID,
          "json_check duplicate member is JSON_INVALID");
    check(json_check(NULL, -1) == NOX_E_ARGUMENT,
          "json_check negative length is E_ARGUMENT");

    rc = json_compact(S("{ \"a\" : [ 1, \"\xc3\xa9\" ] }"), out, sizeof(out),
                      &olen);
    check(rc == NOX_OK && olen == 14
          && memcmp(out, "{\"a\":[1,\"\xc3\xa9\"]}", 14) == 0,
          "json_compact ok, non-ASCII kept");

    rc = json_compact(S("{ \"a\" : [ 1, 2 ] }"), out, 3, &olen);
    check(rc == NOX_E_BUFFER_TOO_SMALL && olen == 11,
          "json_compact small buffer is E_BUFFER_TOO_SMALL with size");

    /* policy */

    policy = 0;
    rc = policy_create(NOX_POLICY_VALIDATE_EXP | NOX_POLICY_VALIDATE_SIG, 0,
                       &policy);
    check(rc == NOX_OK && policy != 0, "policy_create ok");
    check(policy_create(0x100, 0, &bogus) == NOX_E_ARGUMENT,
          "policy_create unknown flag is E_ARGUMENT");
    check(policy_add_keyset(policy, ks) == NOX_OK, "policy_add_keyset ok");
    check(policy_add_keyset(policy, 12345) == NOX_E_HANDLE,
          "policy_add_keyset bogus keyset is E_HANDLE");
    check(policy_add_keyset(ks, ks) == NOX_E_HANDLE,
          "policy_add_keyset keyset as policy is E_HANDLE");
    check(policy_set_nested(policy, NULL, 0, NULL, 0) == NOX_OK,
          "policy_set_nested defaults ok");

    rc = policy_add_rule(policy, NOX_TARGET_CLAIM, S("roles"),
                         NOX_OP_INTERSECT, NOX_VALUE_JSON, S("[\"admin\"]"));
    check(rc == NOX_OK, "policy_add_rule json ok");
    rc = policy_add_rule(policy, NOX_TARGET_CLAIM, S("sub"), NOX_OP_EQ,
                         NOX_VALUE_VARIABLE, NULL, 0);
    check(rc == NOX_OK, "policy_add_rule variable ok");
    rc = policy_add_rule(policy, NOX_TARGET_CLAIM, S("roles"), 99,
                         NOX_VALUE_STRING, S("x"));
    check(rc == NOX_OPERATOR_INVALID, "policy_add_rule bad op");
    rc = policy_add_rule(policy, NOX_TARGET_CLAIM, S("roles"),
                         NOX_OP_INTERSECT, NOX_VALUE_JSON, S("\"admin\""));
    check(rc == NOX_VALUE_TYPE_INVALID,
          "policy_add_rule intersect non-array is VALUE_TYPE_INVALID");
    rc = policy_add_rule(policy, NOX_TARGET_CLAIM, S("a..b"), NOX_OP_EQ,
                         NOX_VALUE_STRING, S("x"));
    check(rc == NOX_PATH_INVALID, "policy_add_rule bad path");

    /* verification */

    values[0].data = NULL;
    values[0].len = 0;
    values[0].reserved = 0;
    values[1].data = (const uint8_t *) "\"alice\"";
    values[1].len = 7;
    values[1].reserved = 0;

    hlen = plen = detail = 0;
    rc = jwt_verify(policy, S(token), NOW, NULL, 0, values, 2, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_OK && hlen == 41 && plen == 56
          && memcmp(out, "{\"alg\":\"HS256\"", 14) == 0
          && memcmp(out + hlen, "{\"sub\":\"alice\"", 14) == 0,
          "jwt_verify ok, header and payload written");

    rc = json_get(out + hlen, plen, S("roles"), NOX_PATH_NAME, NULL, 0,
                  NULL, 0, out + 512, 256, &olen);
    check(rc == NOX_OK && olen == 9 && memcmp(out + 512, "admin,dev", 9) == 0,
          "json_get array joined by comma");
    rc = json_get(out + hlen, plen, S("sub"), NOX_PATH_NAME, NULL, 0,
                  NULL, 0, out + 512, 2, &olen);
    check(rc == NOX_E_BUFFER_TOO_SMALL && olen == 5,
          "json_get small buffer is E_BUFFER_TOO_SMALL with size");
    rc = json_get(out + hlen, plen, S("nope"), NOX_PATH_NAME, NULL, 0,
                  NULL, 0, out + 512, 256, &olen);
    check(rc == NOX_NOT_FOUND, "json_get missing is NOT_FOUND");

    rc = jwt_verify(policy, S(token), 2000000000, NULL, 0, values, 2, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_EXPIRED && hlen == 41, "jwt_verify expired is EXPIRED");

    memcpy(tampered, token, sizeof(token));
    tampered[sizeof(token) - 3] ^= 0x01;
    rc = jwt_verify(policy, (const uint8_t *) tampered,
                    (int32_t) sizeof(token) - 1, NOW, NULL, 0, values, 2,
                    out, sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_BAD_SIGNATURE, "jwt_verify tampered is BAD_SIGNATURE");

    values[1].data = (const uint8_t *) "\"bob\"";
    values[1].len = 5;
    rc = jwt_verify(policy, S(token), NOW, NULL, 0, values, 2, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_CLAIM_FAILED && detail == 1,
          "jwt_verify failing rule is CLAIM_FAILED, detail 1");

    values[1].data = (const uint8_t *) "bob";
    values[1].len = 3;
    rc = jwt_verify(policy, S(token), NOW, NULL, 0, values, 2, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_RULE_VALUE_INVALID && detail == 1,
          "jwt_verify non-JSON variable is RULE_VALUE_INVALID");
    values[1].data = (const uint8_t *) "\"alice\"";
    values[1].len = 7;

    /* every token type: a JWS under signed, then under encrypted */

    rc = keyset_count(ks, &nverify, &ndecrypt);
    check(rc == NOX_OK && nverify > 0 && ndecrypt >= 0, "keyset_count");
    rc = keyset_count(ks, NULL, &ndecrypt);
    check(rc == NOX_E_ARGUMENT, "keyset_count without verify is E_ARGUMENT");

    rc = jwt_verify_ex(policy, S(token), NOW, NULL, 0, values, 2, out,
                       sizeof(out), lens, &detail);
    check(rc == NOX_OK && lens[0] > 0 && lens[1] > 0 && lens[2] == -1,
          "jwt_verify_ex ok on a signed policy");
    rc = jwt_verify_ex(policy, S(token), NOW, NULL, 0, values, 2, out,
                       sizeof(out), NULL, &detail);
    check(rc == NOX_E_ARGUMENT, "jwt_verify_ex without lens is E_ARGUMENT");
    rc = policy_set_type(policy, 3);
    check(rc == NOX_E_ARGUMENT, "policy_set_type 3 is E_ARGUMENT");
    rc = policy_set_type(policy, NOX_JWT_ENCRYPTED);
    check(rc == NOX_OK, "policy_set_type encrypted");
    rc = jwt_verify_ex(policy, S(token), NOW, NULL, 0, values, 2, out,
                       sizeof(out), lens, &detail);
    check(rc == NOX_TYPE_MISMATCH, "a JWS under encrypted is TYPE_MISMATCH");
    rc = policy_set_type(policy, NOX_JWT_NESTED);
    check(rc == NOX_OK, "policy_set_type nested");
    rc = jwt_verify_ex(policy, S(token), NOW, NULL, 0, values, 2, out,
                       (int32_t) sizeof(token), lens, &detail);
    check(rc == NOX_E_BUFFER_TOO_SMALL,
          "nested wants twice the token: E_BUFFER_TOO_SMALL");
    rc = policy_set_type(policy, NOX_JWT_SIGNED);
    check(rc == NOX_OK, "policy_set_type signed");

    /* the checks after the signature on decoded parts (verified-token
       cache hits) */

    rc = jwt_verify(policy, S(token), NOW, NULL, 0, values, 2, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_OK, "jwt_verify ok before jwt_check");
    rc = jwt_check(policy, out, hlen, out + hlen, plen, NOW, values, 2,
                   &detail);
    check(rc == NOX_OK, "jwt_check ok on decoded parts");
    rc = jwt_check(policy, out, hlen, out + hlen, plen, 2000000000, values,
                   2, &detail);
    check(rc == NOX_EXPIRED, "jwt_check expired is EXPIRED");
    values[1].data = (const uint8_t *) "\"bob\"";
    values[1].len = 5;
    rc = jwt_check(policy, out, hlen, out + hlen, plen, NOW, values, 2,
                   &detail);
    check(rc == NOX_CLAIM_FAILED && detail == 1,
          "jwt_check failing rule is CLAIM_FAILED, detail 1");
    values[1].data = (const uint8_t *) "\"alice\"";
    values[1].len = 7;
    rc = jwt_check(policy, S("[1]"), out + hlen, plen, NOW, values, 2,
                   &detail);
    check(rc == NOX_TOKEN_MALFORMED, "jwt_check non-object is MALFORMED");
    rc = jwt_check(policy, NULL, 3, out + hlen, plen, NOW, values, 2,
                   &detail);
    check(rc == NOX_E_ARGUMENT, "jwt_check NULL header is E_ARGUMENT");
    check(jwt_check(7, out, hlen, out + hlen, plen, NOW, values, 2, &detail)
          == NOX_E_HANDLE, "jwt_check bogus policy is E_HANDLE");

    rc = jwt_verify(policy, S(token), NOW, NULL, 0, values, 2, out, 16,
                    &hlen, &plen, &detail);
    check(rc == NOX_E_BUFFER_TOO_SMALL,
          "jwt_verify out_cap < token_len is E_BUFFER_TOO_SMALL");

    rc = jwt_verify(policy, NULL, 10, NOW, NULL, 0, NULL, 0, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_E_ARGUMENT, "jwt_verify NULL token is E_ARGUMENT");

    bogus = 7;
    rc = jwt_verify(policy, S(token), NOW, &bogus, 1, values, 2, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_E_HANDLE, "jwt_verify bogus extra keyset is E_HANDLE");

    rc = jwt_verify(policy, S("a.b"), NOW, NULL, 0, NULL, 0, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_TOKEN_MALFORMED && hlen == -1 && plen == -1,
          "jwt_verify two segments is TOKEN_MALFORMED");

    rc = policy_add_revocation(policy, NOX_REVOKE_SUB,
                               S("{\"alice\":{\"at\":\"2024\"}}"));
    check(rc == NOX_OK, "policy_add_revocation ok");
    check(policy_add_revocation(policy, NOX_REVOKE_SUB, S("{}"))
          == NOX_OK, "policy_add_revocation empty list loads");
    rc = jwt_verify(policy, S(token), NOW, NULL, 0, values, 2, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_SUB_REVOKED, "jwt_verify revoked sub is SUB_REVOKED");

    /* EdDSA (OpenSSL interop) and ECDSA (.NET crypto) under NativeAOT */

    rc = keyset_load(S(keyval), NOX_KEYS_KEYVAL, &pem_ks, &detail);
    check(rc == NOX_OK, "keyset_load keyval PEM ok");
    rc = policy_create(NOX_POLICY_VALIDATE_EXP | NOX_POLICY_VALIDATE_SIG, 0,
                       &pem_policy);
    check(rc == NOX_OK && policy_add_keyset(pem_policy, pem_ks) == NOX_OK,
          "policy for PEM keys ok");
    rc = jwt_verify(pem_policy, S(ed_token), NOW, NULL, 0, NULL, 0, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_OK, "jwt_verify EdDSA ok");
    rc = jwt_verify(pem_policy, S(ec_token), NOW, NULL, 0, NULL, 0, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_OK, "jwt_verify ES256 ok");
    rc = jwt_verify(pem_policy, S(rsa_token), NOW, NULL, 0, NULL, 0, out,
                    sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_OK, "jwt_verify RS256 ok");
    memcpy(tampered, ed_token, sizeof(ed_token));
    tampered[sizeof(ed_token) - 5] ^= 0x01;
    rc = jwt_verify(pem_policy, (const uint8_t *) ed_token,
                    (int32_t) sizeof(ed_token) - 5, NOW, NULL, 0, NULL, 0,
                    out, sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_BAD_SIGNATURE || rc == NOX_TOKEN_MALFORMED,
          "jwt_verify truncated EdDSA signature is rejected");
    rc = jwt_verify(pem_policy, (const uint8_t *) tampered,
                    (int32_t) sizeof(ed_token) - 1, NOW, NULL, 0, NULL, 0,
                    out, sizeof(out), &hlen, &plen, &detail);
    check(rc == NOX_BAD_SIGNATURE,
          "jwt_verify tampered EdDSA is BAD_SIGNATURE");
    check(policy_free(pem_policy) == NOX_OK && keyset_free(pem_ks) == NOX_OK,
          "PEM policy and keyset freed");

    /* IdP responses (RFC 7662, RFC 8693) and cache keys */

    exp = -1;
    rc = introspect_parse(S("{\"active\":true,\"exp\":2000000000}"),
                          1999999000, &exp);
    check(rc == NOX_OK && exp == 1000, "introspect_parse active ok");
    rc = introspect_parse(S("{\"active\":true}"), 1999999000, &exp);
    check(rc == NOX_OK && exp == 0, "introspect_parse without exp ok");
    rc = introspect_parse(S("{\"active\":true,\"exp\":19999990005e-1}"),
                          1999999000, &exp);
    check(rc == NOX_EXPIRED, "introspect_parse exp <= now is EXPIRED");
    rc = introspect_parse(S("{\"active\":true,\"exp\":1e999}"),
                          1999999000, &exp);
    check(rc == NOX_TIME_INVALID, "introspect_parse exp 1e999 is TIME_INVALID");
    rc = introspect_parse(S("{\"active\":true,\"sub\":\"\xff\"}"),
                          1999999000, &exp);
    check(rc == NOX_UTF8_INVALID, "introspect_parse non-UTF-8 is UTF8_INVALID");
    rc = introspect_parse(S("{\"active\":false}"), 1999999000, &exp);
    check(rc == NOX_RESPONSE_INACTIVE && exp == 0,
          "introspect_parse inactive is RESPONSE_INACTIVE");
    rc = introspect_parse(S("{\"active\":\"true\"}"), 1999999000, &exp);
    check(rc == NOX_RESPONSE_ACTIVE_INVALID,
          "introspect_parse string active is RESPONSE_ACTIVE_INVALID");
    rc = introspect_parse(S("{\"active\":"), 1999999000, &exp);
    check(rc == NOX_JSON_INVALID, "introspect_parse truncated is JSON_INVALID");
    rc = introspect_parse(NULL, 3, 1999999000, &exp);
    check(rc == NOX_E_ARGUMENT, "introspect_parse NULL is E_ARGUMENT");

    rc = exchange_parse(S("{\"access_token\":\"n\\u0065w\",\"expires_in\":60,"
                          "\"issued_token_type\":\"urn:x\"}"), out,
                        sizeof(out), &tlen, &ylen, &ilen, &exp);
    check(rc == NOX_OK && tlen == 3 && ylen == -1 && ilen == 5 && exp == 60
          && memcmp(out, "newurn:x", 8) == 0, "exchange_parse ok");
    rc = exchange_parse(S("{\"access_token\":\"n\",\"expires_in\":25e-1}"),
                        out, sizeof(out), &tlen, &ylen, &ilen, &exp);
    check(rc == NOX_OK && exp == 2, "exchange_parse expires_in 25e-1 is 2");
    rc = exchange_parse(S("{\"access_token\":\"n\"}"), out, sizeof(out),
                        &tlen, &ylen, &ilen, &exp);
    check(rc == NOX_OK && exp == -1, "exchange_parse without expires_in: -1");
    rc = exchange_parse(S("{\"access_token\":\"a\\r\\nX-Injected: 1\"}"),
                        out, sizeof(out), &tlen, &ylen, &ilen, &exp);
    check(rc == NOX_TOKEN_CHARS, "exchange_parse CRLF token is TOKEN_CHARS");
    rc = exchange_parse(S("{\"token_type\":\"Bearer\"}"), out, sizeof(out),
                        &tlen, &ylen, &ilen, &exp);
    check(rc == NOX_RESPONSE_NO_TOKEN,
          "exchange_parse without access_token is RESPONSE_NO_TOKEN");
    rc = exchange_parse(S("{\"access_token\":\"abcdef\"}"), out, 2, &tlen,
                        &ylen, &ilen, &exp);
    check(rc == NOX_E_BUFFER_TOO_SMALL && tlen == 6,
          "exchange_parse small buffer is E_BUFFER_TOO_SMALL");

    rc = token_error(200, S("{\"access_token\":\"n\"}"), out, sizeof(out),
                     &tlen);
    check(rc == NOX_OK, "token_error 200 with a token is OK");
    rc = token_error(400, S("{\"error\":\"invalid_grant\"}"), out,
                     sizeof(out), &tlen);
    check(rc == NOX_STS_REJECTED && tlen == 13
          && memcmp(out, "invalid_grant", 13) == 0,
          "token_error invalid_grant is STS_REJECTED with its code");
    rc = token_error(400, S("{\"error\":\"invalid_scope\"}"), out,
                     sizeof(out), &tlen);
    check(rc == NOX_STS_FORBIDDEN, "token_error invalid_scope is FORBIDDEN");
    rc = token_error(503, S("oops"), out, sizeof(out), &tlen);
    check(rc == NOX_STS_SERVER_ERROR, "token_error 503 is STS_SERVER_ERROR");
    rc = token_error(400, NULL, 3, out, sizeof(out), &tlen);
    check(rc == NOX_E_ARGUMENT, "token_error NULL body is E_ARGUMENT");

    rc = numeric_date(S("{\"sub\":\"a\",\"exp\":17961582915e-1}"), S("exp"),
                      &exp);
    check(rc == NOX_OK && exp == 1796158291, "numeric_date exponent form");
    rc = numeric_date(S("{\"exp\":-1.5}"), S("exp"), &exp);
    check(rc == NOX_OK && exp == -2, "numeric_date rounds down");
    rc = numeric_date(S("{\"exp\":1e999}"), S("exp"), &exp);
    check(rc == NOX_TIME_INVALID, "numeric_date 1e999 is TIME_INVALID");
    rc = numeric_date(S("{\"exp\":\"1\"}"), S("exp"), &exp);
    check(rc == NOX_TIME_INVALID, "numeric_date string is TIME_INVALID");
    rc = numeric_date(S("{\"nbf\":1}"), S("exp"), &exp);
    check(rc == NOX_NOT_FOUND, "numeric_date absent is NOT_FOUND");
    rc = numeric_date(NULL, 1, S("exp"), &exp);
    check(rc == NOX_E_ARGUMENT, "numeric_date NULL is E_ARGUMENT");

    rc = sha256(S("abc"), out, sizeof(out));
    check(rc == NOX_OK && out[0] == 0xba && out[1] == 0x78
          && out[31] == 0xad, "sha256 of abc");
    check(sha256(S("abc"), out, 16) == NOX_E_BUFFER_TOO_SMALL,
          "sha256 small buffer is E_BUFFER_TOO_SMALL");

    /* second-level cache entries */

    {
        uint8_t   sealed[64 + NOX_CACHE_SEAL_OVERHEAD], plain[64];
        int32_t   slen, plen, aux;
        int64_t   exp;

        check(cache_seal(S("0123456789abcdef"), S("k1"), 1700000000, 7,
                         S("payload"), sealed, sizeof(sealed), &slen)
              == NOX_OK && slen == 7 + NOX_CACHE_SEAL_OVERHEAD,
              "cache_seal ok");
        check(cache_open(S("0123456789abcdef"), S("k1"), sealed, slen, plain,
                         sizeof(plain), &plen, &exp, &aux) == NOX_OK
              && plen == 7 && memcmp(plain, "payload", 7) == 0
              && exp == 1700000000 && aux == 7, "cache_open ok");
        check(cache_open(S("0123456789abcdef"), S("k2"), sealed, slen, plain,
                         sizeof(plain), &plen, &exp, &aux)
              == NOX_DECRYPT_FAILED, "cache_open other aad is DECRYPT_FAILED");
        check(cache_open(S("fedcba9876543210"), S("k1"), sealed, slen, plain,
                         sizeof(plain), &plen, &exp, &aux)
              == NOX_DECRYPT_FAILED, "cache_open other key is DECRYPT_FAILED");
        check(cache_seal(S("short"), S("k1"), 0, 0, S("p"), sealed,
                         sizeof(sealed), &slen) == NOX_E_ARGUMENT,
              "cache_seal short secret is E_ARGUMENT");
        check(cache_seal(S("0123456789abcdef"), S("k1"), 0, 0, S("payload"),
                         sealed, 8, &slen) == NOX_E_BUFFER_TOO_SMALL
              && slen == 7 + NOX_CACHE_SEAL_OVERHEAD,
              "cache_seal small buffer is E_BUFFER_TOO_SMALL");
    }

    /* handles */

    check(policy_free(policy) == NOX_OK, "policy_free ok");
    check(policy_free(policy) == NOX_E_HANDLE, "policy_free twice is E_HANDLE");
    check(keyset_free(policy) == NOX_E_HANDLE,
          "keyset_free stale handle is E_HANDLE");
    check(keyset_free(ks) == NOX_OK, "keyset_free ok");
    check(keyset_free(0) == NOX_E_HANDLE, "keyset_free 0 is E_HANDLE");

    smoke_sts(lib);
    smoke_providers(lib);
    smoke_jws_probe(lib);

    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}


/* Builds an STS configuration from NUL-terminated name/value strings. */
static int64_t
sts_make(sts_create_pt create, const char **nv, int32_t n, int32_t *rc,
    int32_t *detail)
{
    int32_t    i;
    int64_t    handle;
    nox_buf_t  settings[16];

    for (i = 0; i < n; i++) {
        settings[i].data = (const uint8_t *) nv[i];
        settings[i].len = (int32_t) strlen(nv[i]);
        settings[i].reserved = 0;
    }

    handle = 0;
    *rc = create(settings, n, &handle, detail);
    return handle;
}


/* Security Token Service exchange: every export's status paths. */
static void
smoke_sts(void *lib)
{
    int32_t          rc, detail, lens[3];
    int64_t          otx, ws, jwt, ttl;
    uint8_t          out[4096], key1[NOX_SHA256_LEN], key2[NOX_SHA256_LEN];
    uint8_t         *big;
    nox_buf_t        values[4], bad;
    sts_create_pt    create;
    free_pt          sts_free;
    sts_key_pt       key;
    sts_request_pt   request;
    sts_response_pt  response;

    static const char  *otx_nv[] = {
        "type", "otx", "auth", "client_secret_basic",
        "client_id", "app", "client_secret", "s3cret"
    };
    static const char  *ws_nv[] = {
        "type", "wstrust", "endpoint", "https://sts.example/adfs"
    };
    static const char   oct_jwk[] =
        "{\"kty\":\"oct\",\"kid\":\"m\","
        "\"k\":\"c21va2UtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZiEh\"}";
    static const char  *jwt_nv[] = { "type", "jwt", "endpoint", oct_jwk };
    static const char  *unknown_nv[] = { "type", "otx", "colour", "blue" };
    static const char  *invalid_nv[] = { "type", "otx", "expiry", "soon" };
    static const char  *badkey_nv[] = { "type", "jwt", "endpoint", "{}" };
    static const char   fault[] =
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">"
        "<s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code>"
        "</s:Fault></s:Body></s:Envelope>";
    static const char   dtd[] =
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>";
    static const char   no_rstr[] =
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">"
        "<s:Body/></s:Envelope>";
    static const char   no_token[] =
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">"
        "<s:Body><t:RequestSecurityTokenResponse xmlns:t=\"http://docs.oasis"
        "-open.org/ws-sx/ws-trust/200512\"/></s:Body></s:Envelope>";

    create = (sts_create_pt) sym(lib, "nox_sts_create");
    sts_free = (free_pt) sym(lib, "nox_sts_free");
    key = (sts_key_pt) sym(lib, "nox_sts_key");
    request = (sts_request_pt) sym(lib, "nox_sts_request");
    response = (sts_response_pt) sym(lib, "nox_sts_response");
    if (create == NULL || sts_free == NULL || key == NULL || request == NULL
        || response == NULL)
    {
        return;
    }

    /* nox_sts_create */

    otx = sts_make(create, otx_nv, 8, &rc, &detail);
    check(rc == NOX_OK && otx != 0, "sts_create otx ok");
    ws = sts_make(create, ws_nv, 4, &rc, &detail);
    check(rc == NOX_OK && ws != 0, "sts_create wstrust ok");
    jwt = sts_make(create, jwt_nv, 4, &rc, &detail);
    check(rc == NOX_OK && jwt != 0, "sts_create jwt ok");
    sts_make(create, unknown_nv, 4, &rc, &detail);
    check(rc == NOX_STS_SETTING_UNKNOWN && detail == 1,
          "sts_create unknown name is STS_SETTING_UNKNOWN, detail 1");
    sts_make(create, invalid_nv, 4, &rc, &detail);
    check(rc == NOX_STS_SETTING_INVALID && detail == 1,
          "sts_create bad expiry is STS_SETTING_INVALID, detail 1");
    sts_make(create, badkey_nv, 4, &rc, &detail);
    check(rc == NOX_STS_KEY_INVALID && detail == 1,
          "sts_create bad JWK is STS_KEY_INVALID, detail 1");
    sts_make(create, otx_nv, 3, &rc, &detail);
    check(rc == NOX_E_ARGUMENT, "sts_create odd count is E_ARGUMENT");
    check(create(NULL, 2, NULL, &detail) == NOX_E_ARGUMENT,
          "sts_create NULL is E_ARGUMENT");

    /* nox_sts_key */

    memset(values, 0, sizeof(values));
    rc = key(otx, S("tok"), NULL, 0, key1, sizeof(key1));
    check(rc == NOX_OK, "sts_key ok");
    rc = key(otx, S("tok"), values, 4, key2, sizeof(key2));
    check(rc == NOX_OK && memcmp(key1, key2, NOX_SHA256_LEN) == 0,
          "sts_key with NULL values equals the configured key");
    values[3].data = (const uint8_t *) "other";
    values[3].len = 5;
    rc = key(otx, S("tok"), values, 4, key2, sizeof(key2));
    check(rc == NOX_OK && memcmp(key1, key2, NOX_SHA256_LEN) != 0,
          "sts_key changes with a request value");
    check(key(otx, S("tok"), NULL, 0, key1, 16) == NOX_E_BUFFER_TOO_SMALL,
          "sts_key small buffer is E_BUFFER_TOO_SMALL");
    check(key(otx, S("tok"), values, 3, key1, 32) == NOX_E_ARGUMENT,
          "sts_key wrong value count is E_ARGUMENT");
    check(key(12345, S("tok"), NULL, 0, key1, 32) == NOX_E_HANDLE,
          "sts_key bogus handle is E_HANDLE");

    /* nox_sts_request */

    rc = request(otx, S("tok"), NULL, 0, NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_OK && lens[0] > 0 && lens[1] > 6 && lens[2] == 0
          && memcmp(out, "grant_type=urn%3Aietf%3Aparams", 30) == 0
          && memcmp(out + lens[0], "Basic ", 6) == 0, "sts_request otx ok");
    rc = request(otx, S("tok"), NULL, 0, NOW, out, 10, lens, &ttl);
    check(rc == NOX_E_BUFFER_TOO_SMALL && lens[0] > 10,
          "sts_request small buffer is E_BUFFER_TOO_SMALL with the size");
    rc = request(otx, S(""), NULL, 0, NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_SOURCE_INVALID, "sts_request empty source is SOURCE_INVALID");
    bad.data = NULL;
    bad.len = 3;
    bad.reserved = 0;
    rc = request(otx, S("tok"), &bad, 1, NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_E_ARGUMENT, "sts_request bad values is E_ARGUMENT");
    rc = request(otx, S("tok"), NULL, 0, NOW, out, sizeof(out), NULL, &ttl);
    check(rc == NOX_E_ARGUMENT, "sts_request NULL lens is E_ARGUMENT");
    rc = request(7, S("tok"), NULL, 0, NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_E_HANDLE, "sts_request bogus handle is E_HANDLE");
    rc = request(ws, S("not xml"), NULL, 0, NOW, out, sizeof(out), lens,
                 &ttl);
    check(rc == NOX_SOURCE_INVALID,
          "sts_request wstrust non-XML source is SOURCE_INVALID");
    rc = request(ws, S("<a xmlns=\"urn:x\"/>"), NULL, 0, NOW, out,
                 sizeof(out), lens, &ttl);
    check(rc == NOX_OK && lens[1] == 0 && lens[2] == 24
          && memcmp(out + lens[0], "https://sts.example/adfs", 24) == 0,
          "sts_request wstrust ok, soapAction is the endpoint");
    rc = request(jwt, S("{\"sub\":\"alice\"}"), NULL, 0, NOW, out,
                 sizeof(out), lens, &ttl);
    check(rc == NOX_OK && lens[0] > 40 && ttl == 54,
          "sts_request jwt mints a token with its ttl");
    rc = request(jwt, S("eyJ.x.y"), NULL, 0, NOW, out, sizeof(out), lens,
                 &ttl);
    check(rc == NOX_SOURCE_INVALID,
          "sts_request jwt non-JSON source is SOURCE_INVALID");

    /* nox_sts_response */

    rc = response(otx, 200, S("{\"access_token\":\"new\",\"issued_token_type"
                  "\":\"urn:x\",\"token_type\":\"Bearer\",\"expires_in\":100}"),
                  NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_OK && lens[0] == 3 && lens[1] == 5 && lens[2] == 6
          && ttl == 90 && memcmp(out, "newurn:xBearer", 14) == 0,
          "sts_response ok");
    rc = response(otx, 400, S("{\"error\":\"invalid_grant\"}"), NOW, out,
                  sizeof(out), lens, &ttl);
    check(rc == NOX_STS_REJECTED && lens[0] == 13
          && memcmp(out, "invalid_grant", 13) == 0,
          "sts_response invalid_grant is STS_REJECTED");
    rc = response(otx, 403, S("{\"error\":\"access_denied\"}"), NOW, out,
                  sizeof(out), lens, &ttl);
    check(rc == NOX_STS_FORBIDDEN, "sts_response access_denied is STS_FORBIDDEN");
    rc = response(otx, 503, S("busy"), NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_STS_SERVER_ERROR, "sts_response 503 is STS_SERVER_ERROR");
    rc = response(otx, 200, S("{\"access_token\":"), NOW, out, sizeof(out),
                  lens, &ttl);
    check(rc == NOX_JSON_INVALID, "sts_response truncated is JSON_INVALID");
    rc = response(otx, 200, S("[1]"), NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_JSON_NOT_OBJECT, "sts_response array is JSON_NOT_OBJECT");
    rc = response(otx, 200, S("{\"token_type\":\"Bearer\"}"), NOW, out,
                  sizeof(out), lens, &ttl);
    check(rc == NOX_RESPONSE_NO_TOKEN, "sts_response no token is NO_TOKEN");
    rc = response(otx, 200, S("{\"access_token\":\"a\\r\\nb\"}"), NOW, out,
                  sizeof(out), lens, &ttl);
    check(rc == NOX_TOKEN_CHARS, "sts_response CRLF token is TOKEN_CHARS");
    rc = response(otx, 200, S("{\"access_token\":\"\xff\"}"), NOW, out,
                  sizeof(out), lens, &ttl);
    check(rc == NOX_UTF8_INVALID, "sts_response bad UTF-8 is UTF8_INVALID");
    rc = response(otx, 200, S("{\"access_token\":\"abcdef\"}"), NOW, out, 2,
                  lens, &ttl);
    check(rc == NOX_E_BUFFER_TOO_SMALL && lens[0] == 6,
          "sts_response small buffer is E_BUFFER_TOO_SMALL");
    rc = response(otx, 200, NULL, 5, NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_E_ARGUMENT, "sts_response NULL body is E_ARGUMENT");
    rc = response(99, 200, S("{}"), NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_E_HANDLE, "sts_response bogus handle is E_HANDLE");

    big = malloc(NOX_MAX_STS_RESPONSE + 1);
    if (big != NULL) {
        memset(big, ' ', NOX_MAX_STS_RESPONSE + 1);
        rc = response(otx, 200, big, NOX_MAX_STS_RESPONSE + 1, NOW, out,
                      sizeof(out), lens, &ttl);
        check(rc == NOX_RESPONSE_TOO_LARGE,
              "sts_response over the limit is RESPONSE_TOO_LARGE");
        free(big);
    }

    rc = response(ws, 500, S(fault), NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_STS_REJECTED && lens[0] == 8
          && memcmp(out, "s:Sender", 8) == 0,
          "sts_response SOAP fault is STS_REJECTED with its code");
    rc = response(ws, 200, S(dtd), NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_XML_DTD, "sts_response DTD is XML_DTD");
    rc = response(ws, 200, S(no_rstr), NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_XML_INVALID, "sts_response no RSTR is XML_INVALID");
    rc = response(ws, 200, S(no_token), NOW, out, sizeof(out), lens, &ttl);
    check(rc == NOX_RESPONSE_NO_TOKEN,
          "sts_response RSTR without token is RESPONSE_NO_TOKEN");

    /* nox_sts_free */

    check(sts_free(otx) == NOX_OK && sts_free(ws) == NOX_OK
          && sts_free(jwt) == NOX_OK, "sts_free ok");
    check(sts_free(otx) == NOX_E_HANDLE, "sts_free twice is E_HANDLE");
}


/* auth_jwt_provider: the unverified iss, a provider's policy */
static void
smoke_providers(void *lib)
{
    int64_t                  policy;
    int32_t                  rc, len, detail;
    uint8_t                  out[256];
    jwt_issuer_pt            jwt_issuer;
    policy_set_profile_pt    set_profile;
    policy_add_audience_pt   add_audience;
    policy_create_pt         policy_create;
    jwt_check_pt             jwt_check;
    free_pt                  policy_free;

    jwt_issuer = (jwt_issuer_pt) sym(lib, "nox_jwt_issuer");
    set_profile = (policy_set_profile_pt) sym(lib, "nox_policy_set_profile");
    add_audience = (policy_add_audience_pt) sym(lib,
                                                "nox_policy_add_audience");
    policy_create = (policy_create_pt) sym(lib, "nox_policy_create");
    jwt_check = (jwt_check_pt) sym(lib, "nox_jwt_check");
    policy_free = (free_pt) sym(lib, "nox_policy_free");

    len = -1;
    rc = jwt_issuer(S("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2EuZXhhbX"
                      "BsZSIsInN1YiI6IngifQ.c2ln"), out, sizeof(out), &len);
    check(rc == NOX_OK && len == 17 && memcmp(out, "https://a.example", 17)
          == 0, "jwt_issuer ok");
    rc = jwt_issuer(S("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2EuZXhhbX"
                      "BsZSIsInN1YiI6IngifQ.c2ln"), out, 4, &len);
    check(rc == NOX_E_BUFFER_TOO_SMALL && len == 17,
          "jwt_issuer small buffer is E_BUFFER_TOO_SMALL");
    rc = jwt_issuer(S("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), out,
                    sizeof(out), &len);
    check(rc == NOX_NOT_FOUND, "jwt_issuer without iss is NOT_FOUND");
    rc = jwt_issuer(S("a.b"), out, sizeof(out), &len);
    check(rc == NOX_TOKEN_MALFORMED, "jwt_issuer two segments is "
          "TOKEN_MALFORMED");
    rc = jwt_issuer(S("a.b.c"), out, sizeof(out), NULL);
    check(rc == NOX_E_ARGUMENT, "jwt_issuer NULL out_len is E_ARGUMENT");

    rc = policy_create(NOX_POLICY_VALIDATE_EXP, 0, &policy);
    check(rc == NOX_OK, "policy for a provider ok");
    check(add_audience(policy, S("api")) == NOX_VALUE_TYPE_INVALID,
          "policy_add_audience before a profile is VALUE_TYPE_INVALID");
    check(set_profile(policy, S(""), 0, 0) == NOX_VALUE_TYPE_INVALID,
          "policy_set_profile empty issuer is VALUE_TYPE_INVALID");
    check(set_profile(policy, S("https://a.example"), 0x100, 0)
          == NOX_E_ARGUMENT, "policy_set_profile bad flags is E_ARGUMENT");
    check(set_profile(99, S("https://a.example"), 0, 0) == NOX_E_HANDLE,
          "policy_set_profile bogus handle is E_HANDLE");
    rc = set_profile(policy, S("https://a.example"),
                     NOX_PROFILE_AT_JWT | NOX_PROFILE_REQUIRE_EXP, 600);
    check(rc == NOX_OK, "policy_set_profile ok");
    check(add_audience(policy, S("api")) == NOX_OK, "policy_add_audience ok");

    rc = jwt_check(policy, S("{\"alg\":\"RS256\",\"typ\":\"at+JWT\"}"),
                   S("{\"iss\":\"https://a.example\",\"aud\":[\"x\","
                     "\"api\"],\"iat\":1700000000,\"exp\":1700000300}"),
                   NOW, NULL, 0, &detail);
    check(rc == NOX_OK, "jwt_check provider ok");
    rc = jwt_check(policy, S("{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}"),
                   S("{\"iss\":\"https://b.example\",\"aud\":\"api\","
                     "\"iat\":1700000000,\"exp\":1700000300}"),
                   NOW, NULL, 0, &detail);
    check(rc == NOX_ISSUER_MISMATCH, "jwt_check other iss is "
          "ISSUER_MISMATCH");
    rc = jwt_check(policy, S("{\"alg\":\"RS256\",\"typ\":\"JWT\"}"),
                   S("{\"iss\":\"https://a.example\",\"aud\":\"api\","
                     "\"iat\":1700000000,\"exp\":1700000300}"),
                   NOW, NULL, 0, &detail);
    check(rc == NOX_AT_TYPE_MISMATCH, "jwt_check typ JWT is "
          "AT_TYPE_MISMATCH");
    rc = jwt_check(policy, S("{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}"),
                   S("{\"iss\":\"https://a.example\",\"aud\":\"api\","
                     "\"iat\":1699990000,\"exp\":1700000300}"),
                   NOW, NULL, 0, &detail);
    check(rc == NOX_LIFETIME_TOO_LONG, "jwt_check long lifetime is "
          "LIFETIME_TOO_LONG");
    rc = jwt_check(policy, S("{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}"),
                   S("{\"iss\":\"https://a.example\",\"aud\":\"api\","
                     "\"exp\":1700000300}"),
                   NOW, NULL, 0, &detail);
    check(rc == NOX_IAT_MISSING, "jwt_check without iat is IAT_MISSING");
    rc = jwt_check(policy, S("{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}"),
                   S("{\"iss\":\"https://a.example\",\"aud\":\"web\","
                     "\"iat\":1700000000,\"exp\":1700000300}"),
                   NOW, NULL, 0, &detail);
    check(rc == NOX_AUDIENCE_MISMATCH, "jwt_check other aud is "
          "AUDIENCE_MISMATCH");
    check(policy_free(policy) == NOX_OK, "provider policy freed");
}


/* nox_jws_probe: a JWS (with or without iss), alg none, a JWE, no JWS */
static void
smoke_jws_probe(void *lib)
{
    int32_t       rc, len;
    uint8_t       iss[256];
    jws_probe_pt  probe;

    probe = (jws_probe_pt) sym(lib, "nox_jws_probe");
    if (probe == NULL) {
        return;
    }

    rc = probe(S("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2EuZXhhbXBsZSJ9"
                 ".c2ln"), iss, sizeof(iss), &len);
    check(rc == NOX_OK && len == 17 && memcmp(iss, "https://a.example", 17)
          == 0, "jws_probe JWS with iss is OK with the iss");
    rc = probe(S(ed_token), iss, sizeof(iss), &len);
    check(rc == NOX_OK && len == -1, "jws_probe JWS without iss is OK, -1");
    rc = probe(S("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."), iss, sizeof(iss),
               &len);
    check(rc == NOX_ALG_NONE, "jws_probe alg none is ALG_NONE");
    rc = probe(S("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.e30.c2ln"),
               iss, sizeof(iss), &len);
    check(rc == NOX_ALG_UNSUPPORTED, "jws_probe JWE header is ALG_UNSUPPORTED");
    rc = probe(S("opaque-token-1234"), iss, sizeof(iss), &len);
    check(rc == NOX_TOKEN_MALFORMED, "jws_probe opaque is TOKEN_MALFORMED");
    rc = probe(S("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2EuZXhhbXBsZSJ9"
                 ".c2ln"), iss, 4, &len);
    check(rc == NOX_TOKEN_TOO_LARGE, "jws_probe small iss buffer refused");
    rc = probe(NULL, 5, iss, sizeof(iss), &len);
    check(rc == NOX_E_ARGUMENT, "jws_probe NULL token is E_ARGUMENT");
}
