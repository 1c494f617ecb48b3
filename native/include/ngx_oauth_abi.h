/*
 * NginxOAuth: the C ABI between the nginx shim (shim/) and the NativeAOT
 * managed core (managed/NginxOAuth.Native).  This header is the single
 * source of truth; managed/NginxOAuth.Native/Abi.cs mirrors it and
 * native/exports.txt lists every exported symbol.
 *
 * Rules (see STYLE.md section 3):
 *   - fixed-width types only; byte buffers are (const uint8_t *, int32_t);
 *     no NUL termination is assumed anywhere;
 *   - every export returns a status: 0 ok, > 0 a decision, < 0 a fault;
 *   - outputs go into caller-owned buffers or opaque int64_t handles with a
 *     create/free pair;
 *   - no text crosses the boundary: the shim maps codes to log lines.
 */

#ifndef NGX_OAUTH_ABI_H
#define NGX_OAUTH_ABI_H

#include <stdint.h>

#define NOX_ABI_VERSION              6

/* ---- status codes ------------------------------------------------------ */

#define NOX_OK                       0

/* decisions about a token (positive) */
#define NOX_TOKEN_MALFORMED          1   /* not three base64url JSON parts */
#define NOX_TOKEN_TOO_LARGE          2   /* over the size limits */
#define NOX_ALG_NONE                 3   /* alg "none": never accepted */
#define NOX_ALG_UNSUPPORTED          4   /* alg missing or not supported */
#define NOX_KEY_NOT_FOUND            5   /* no key for this kid/alg family */
#define NOX_BAD_SIGNATURE            6
#define NOX_EXPIRED                  7   /* now >= exp + leeway */
#define NOX_NOT_YET_VALID            8   /* now < nbf - leeway */
#define NOX_EXP_MISSING              9   /* validate_exp on, no numeric exp */
#define NOX_SUB_REVOKED             10
#define NOX_KID_REVOKED             11   /* also: kid missing while a kid
                                            revocation list is set */
#define NOX_CLAIM_FAILED            12   /* detail = rule index */
#define NOX_HEADER_FAILED           13   /* detail = rule index */
#define NOX_RULE_VALUE_INVALID      14   /* a $variable expected value is not
                                            JSON; detail = rule index */
#define NOX_NO_KEYS                 15   /* validate_sig on, no keys at all */
#define NOX_CRIT_UNSUPPORTED        16   /* "crit" names an unknown header */
#define NOX_TIME_INVALID            17   /* exp/nbf (or an IdP's exp) is a
                                            number whose whole seconds do
                                            not fit int64 (1e999), or an
                                            IdP's exp is not a number */
#define NOX_KEY_SKIPPED             18   /* the key the token needs (its kid,
                                            or with no kid the only keys
                                            that could verify) was skipped
                                            when its set was loaded;
                                            detail = why (NOX_KEY_*) */
#define NOX_RULE_MATCH_LIMIT        19   /* a match rule ran out of its
                                            time budget; detail = rule
                                            index */

/* results of lookups */
#define NOX_NOT_FOUND               20

/* decisions about an encrypted token (positive) */
#define NOX_TYPE_MISMATCH           21   /* not the token type of the
                                            policy (nox_policy_set_type): a
                                            JWS where a JWE is expected, a
                                            nested JWE whose cty is not JWT */
#define NOX_DECRYPT_FAILED          22   /* a JWE did not decrypt with any
                                            candidate key: wrong key,
                                            tampered key, iv, ciphertext or
                                            tag (one code for all: no
                                            padding oracle) */
#define NOX_ZIP_UNSUPPORTED         23   /* a JWE with "zip": refused */

/* decisions about configuration input (positive) */
#define NOX_JSON_INVALID            30   /* not well-formed JSON */
#define NOX_JSON_NOT_OBJECT         31
#define NOX_JSON_EMPTY              32   /* empty object / no keys */
#define NOX_KEY_UNKNOWN_KTY         33   /* detail = key index */
#define NOX_KEY_UNKNOWN_ALG         34   /* detail = key index */
#define NOX_KEY_UNKNOWN_CURVE       35   /* detail = key index */
#define NOX_KEY_BAD_PARAMETER       36   /* n/e/x/y/k missing or invalid */
#define NOX_KEY_RSA_TOO_SMALL       37   /* < 2048 bits */
#define NOX_KEY_RSA_TOO_LARGE       38   /* > 16384 bits */
#define NOX_KEY_HMAC_TOO_SHORT      39   /* shorter than its alg's hash */
#define NOX_KEY_BAD_PEM             40   /* keyval value not a PEM public key */
#define NOX_KEY_ALG_MISMATCH        41   /* JWK alg does not fit its kty/crv */
#define NOX_KEYS_TOO_MANY           42   /* more than NOX_MAX_KEYS keys */
#define NOX_KEYS_TOO_LARGE          43   /* document over NOX_MAX_KEYSET */
#define NOX_KEY_EMPTY_KID           44   /* "kid": "" */
#define NOX_PATH_INVALID            45   /* claim path does not parse */
#define NOX_OPERATOR_INVALID        46   /* operator code out of range */
#define NOX_VALUE_TYPE_INVALID      47   /* expected value of the wrong JSON
                                            type for the operator, e.g.
                                            intersect with a non-array */
#define NOX_PATTERN_INVALID         48   /* match: a pattern over 1 KiB or
                                            one that does not compile */
#define NOX_KEY_ENCRYPTION          49   /* "use":"enc" or a JWE "alg": an
                                            encryption key, never used to
                                            verify */

/* decisions about IdP responses (RFC 7662, RFC 8693; positive) */
#define NOX_RESPONSE_INACTIVE       50   /* introspection "active": false */
#define NOX_RESPONSE_ACTIVE_INVALID 51   /* "active" missing or not a boolean */
#define NOX_RESPONSE_TOO_LARGE      52   /* over NOX_MAX_IDP_RESPONSE */
#define NOX_RESPONSE_NO_TOKEN       53   /* exchange: no non-empty string
                                            "access_token" */
/* (and NOX_JSON_INVALID / NOX_JSON_NOT_OBJECT for the document itself) */

/* decisions about Security Token Service answers (positive) */
#define NOX_STS_REJECTED            60   /* the STS refused the source token:
                                            HTTP 4xx, an OAuth "error" other
                                            than those of NOX_STS_FORBIDDEN,
                                            a SOAP Fault -> 401 */
#define NOX_STS_FORBIDDEN           61   /* "access_denied", "invalid_scope",
                                            "insufficient_scope" -> 403 */
#define NOX_STS_SERVER_ERROR        62   /* HTTP 5xx (or other non-2xx that
                                            is not 4xx) -> 502 */
#define NOX_XML_INVALID             63   /* not well-formed XML, not a SOAP
                                            1.1/1.2 envelope, or no
                                            RequestSecurityTokenResponse */
#define NOX_XML_DTD                 64   /* a DTD / entity declaration */
#define NOX_TOKEN_CHARS             65   /* the issued token holds a byte
                                            outside 0x20-0x7e, 0x09 and
                                            valid UTF-8 >= 0x80 (CR, LF, NUL
                                            and other controls refused) */
#define NOX_UTF8_INVALID            66   /* the response is not valid UTF-8 */
#define NOX_SOURCE_INVALID          67   /* the source token cannot be used:
                                            wstrust without value_type and
                                            not well-formed XML; jwt with a
                                            source that is not a JSON object */
/* (and NOX_RESPONSE_TOO_LARGE, NOX_RESPONSE_NO_TOKEN, NOX_JSON_INVALID,
    NOX_JSON_NOT_OBJECT for the STS answer itself) */

/* decisions about STS settings (nox_sts_create; positive, detail = index
   of the offending setting pair) */
#define NOX_STS_SETTING_UNKNOWN     70   /* a name the core does not know */
#define NOX_STS_SETTING_INVALID     71   /* a value the core cannot use (bad
                                            number, bad params form string,
                                            bad projection) */
#define NOX_STS_KEY_INVALID         72   /* jwk: not a private JWK, or its
                                            kty/crv does not fit alg */

/* decisions of a provider's policy (nox_policy_set_profile; positive) */
#define NOX_ISSUER_MISMATCH         80   /* "iss" is not the provider's */
#define NOX_AT_TYPE_MISMATCH        81   /* typ=at+jwt: the header's "typ" is
                                            not "at+jwt" or
                                            "application/at+jwt" (any case) */
#define NOX_LIFETIME_TOO_LONG       82   /* exp - iat over max_lifetime */
#define NOX_IAT_MISSING             83   /* max_lifetime: no numeric "iat" */
#define NOX_AUDIENCE_MISMATCH       84   /* "aud" names none of the
                                            provider's audiences */

/* faults (negative) */
#define NOX_E_ARGUMENT             -1
#define NOX_E_BUFFER_TOO_SMALL     -2   /* *out_len holds the size needed */
#define NOX_E_HANDLE               -3
#define NOX_E_INTERNAL             -4

/* ---- limits ------------------------------------------------------------ */

#define NOX_MAX_TOKEN           (256 * 1024)   /* compact JWS, bytes */
#define NOX_MAX_HEADER          (16 * 1024)    /* decoded JOSE header */
#define NOX_MAX_KEYSET          (1024 * 1024)  /* JWKS / keyval document */
#define NOX_MAX_KEYS            256
#define NOX_MAX_IDP_RESPONSE    (64 * 1024)    /* introspection / exchange */
#define NOX_MAX_STS_RESPONSE    (1024 * 1024)  /* STS answer (JSON or SOAP) */
#define NOX_STS_ERROR_MAX       128            /* error/fault code returned
                                                  by nox_sts_response */
#define NOX_SHA256_LEN          32
#define NOX_CACHE_SEAL_OVERHEAD (1 + 12 + 16 + 12)  /* nox_cache_seal */

/* ---- enumerations ------------------------------------------------------ */

#define NOX_KEYS_JWKS                0
#define NOX_KEYS_KEYVAL              1

#define NOX_JWT_SIGNED               0   /* auth_jwt_type signed (JWS) */
#define NOX_JWT_ENCRYPTED            1   /* JWE, plaintext = claims */
#define NOX_JWT_NESTED               2   /* JWE (cty JWT) holding a JWS */

#define NOX_POLICY_VALIDATE_EXP      0x1
#define NOX_POLICY_VALIDATE_SIG      0x2

#define NOX_PROFILE_AT_JWT           0x1  /* RFC 9068 typ */
#define NOX_PROFILE_REQUIRE_EXP      0x2

#define NOX_REVOKE_SUB               0
#define NOX_REVOKE_KID               1

#define NOX_TARGET_CLAIM             0
#define NOX_TARGET_HEADER            1

#define NOX_OP_EQ                    0
#define NOX_OP_NE                    1
#define NOX_OP_GT                    2
#define NOX_OP_GE                    3
#define NOX_OP_LT                    4
#define NOX_OP_LE                    5
#define NOX_OP_INTERSECT             6
#define NOX_OP_NINTERSECT            7
#define NOX_OP_IN                    8
#define NOX_OP_NIN                   9
#define NOX_OP_MATCH                10   /* regular expression on a string */
#define NOX_OP_MASK               0xff
#define NOX_OP_NOT               0x100   /* "!" prefix, or'ed with any
                                            operator: true and false swap,
                                            an error still fails */

#define NOX_VALUE_STRING             0   /* compared as a JSON string */
#define NOX_VALUE_JSON               1   /* json=...: parsed when added */
#define NOX_VALUE_VARIABLE           2   /* parsed as JSON per request */

/* claim path syntax */
#define NOX_PATH_NAME                0   /* one literal member name */
#define NOX_PATH_NESTED              1   /* delimiter/quote path, or a
                                            JQ-like path starting . or [ */
#define NOX_PATH_NAMES               2   /* literal names separated by 0x00 */

/* STS exchange types (the "type" setting) */
#define NOX_STS_WSTRUST              1
#define NOX_STS_ROPC                 2
#define NOX_STS_OTX                  3
#define NOX_STS_CC                   4
#define NOX_STS_JWT                  5
#define NOX_STS_INTROSPECT           6   /* an RFC 7662 request: token=source
                                            and client authentication
                                            (auth_oauth2_token) */

typedef struct {
    const uint8_t  *data;
    int32_t         len;
    int32_t         reserved;
} nox_buf_t;

/* ---- exports ----------------------------------------------------------- */

int32_t nox_abi_version(void);

/* Parses a JWKS or keyval document and builds the key objects once.
 * A key that will not be used (weak, malformed, unknown kty or curve, an
 * encryption key) is skipped and listed (nox_keyset_skipped); a document
 * with no usable key fails with the first key's reason, *detail = its
 * index.  Other failures concern the whole document (*detail = -1). */
int32_t nox_keyset_load(const uint8_t *data, int32_t len, int32_t format,
    int64_t *handle, int32_t *detail);
int32_t nox_keyset_free(int64_t handle);

/* The index-th skipped key of a set (from 0): its position in the
 * document, why (NOX_KEY_*, NOX_KEY_ENCRYPTION) and its kid (at most
 * kid_cap bytes, *kid_len = -1 when it has none).  NOX_NOT_FOUND past the
 * last one. */
int32_t nox_keyset_skipped(int64_t handle, int32_t index, int32_t *key_index,
    int32_t *reason, uint8_t *kid, int32_t kid_cap, int32_t *kid_len);

/* How many keys of a loaded set verify signatures and decrypt JWE. */
int32_t nox_keyset_count(int64_t handle, int32_t *verify, int32_t *decrypt);

/* Checks that data is well-formed JSON (for json= values). */
int32_t nox_json_check(const uint8_t *data, int32_t len);

/* A verification policy: built once per location per worker. */
int32_t nox_policy_create(int32_t flags, int64_t leeway_sec,
    int64_t *handle);
int32_t nox_policy_add_keyset(int64_t policy, int64_t keyset);
int32_t nox_policy_add_revocation(int64_t policy, int32_t kind,
    const uint8_t *json, int32_t len);
int32_t nox_policy_set_nested(int64_t policy, const uint8_t *delim,
    int32_t delim_len, const uint8_t *quote, int32_t quote_len);
/* Rules are numbered in the order they are added, from 0. */
int32_t nox_policy_add_rule(int64_t policy, int32_t target,
    const uint8_t *path, int32_t path_len, int32_t op, int32_t value_kind,
    const uint8_t *value, int32_t value_len);
int32_t nox_policy_free(int64_t policy);

/*
 * The token type a policy accepts (NOX_JWT_*; default NOX_JWT_SIGNED).
 * Encrypted and nested tokens are decrypted with the private and symmetric
 * keys of the policy's and the extra keysets (JWKs with "d", "oct" keys
 * whose use is absent or "enc", keyval PEM private keys).
 */
int32_t nox_policy_set_type(int64_t policy, int32_t type);

/*
 * Verifies a compact JWS against a policy at time `now` (Unix seconds).
 * extra_keysets: keysets fetched for this request (auth_jwt_key_request).
 * rule_values: one entry per rule, read only for NOX_VALUE_VARIABLE rules.
 * out receives the decoded JOSE header JSON followed by the decoded payload
 * JSON; out_cap must be at least token_len.  *header_len and *payload_len
 * are set as soon as the token decodes (also when a later check fails),
 * else -1.  *detail carries the rule index for rule decisions.
 */
int32_t nox_jwt_verify(int64_t policy, const uint8_t *token,
    int32_t token_len, int64_t now, const int64_t *extra_keysets,
    int32_t n_extra, const nox_buf_t *rule_values, int32_t n_values,
    uint8_t *out, int32_t out_cap, int32_t *header_len,
    int32_t *payload_len, int32_t *detail);

/*
 * nox_jwt_verify for every token type.  out receives the decoded header,
 * the payload and, for NOX_JWT_NESTED, the inner JWS (the text for
 * $jwt_payload); lens[0..2] are their lengths (-1 when absent; lens[2] is
 * -1 unless the policy is nested).  For NOX_JWT_ENCRYPTED the header is
 * the JWE protected header and the payload the plaintext; for
 * NOX_JWT_NESTED both are the inner JWS's.  out_cap must be at least
 * token_len, 2 * token_len for a nested policy.
 */
int32_t nox_jwt_verify_ex(int64_t policy, const uint8_t *token,
    int32_t token_len, int64_t now, const int64_t *extra_keysets,
    int32_t n_extra, const nox_buf_t *rule_values, int32_t n_values,
    uint8_t *out, int32_t out_cap, int32_t *lens, int32_t *detail);

/*
 * The checks of nox_jwt_verify after the signature, on a header and payload
 * decoded (and verified) earlier, e.g. held by the verified-token cache:
 * alg none and crit, exp/nbf at `now`, revocation lists, claim and header
 * rules (rule_values as for nox_jwt_verify).  Same status codes; *detail
 * carries the rule index for rule decisions.
 */
int32_t nox_jwt_check(int64_t policy, const uint8_t *header,
    int32_t header_len, const uint8_t *payload, int32_t payload_len,
    int64_t now, const nox_buf_t *rule_values, int32_t n_values,
    int32_t *detail);

/*
 * Reads a member of a JSON object (a decoded header or payload) and renders
 * it for an nginx variable: strings unescaped, numbers/true/false as JSON
 * text, null as an empty string, arrays as their elements rendered the same
 * way and joined by ",", objects as compact JSON.  delim/quote are used
 * with NOX_PATH_NESTED.
 */
int32_t nox_json_get(const uint8_t *json, int32_t json_len,
    const uint8_t *path, int32_t path_len, int32_t path_kind,
    const uint8_t *delim, int32_t delim_len, const uint8_t *quote,
    int32_t quote_len, uint8_t *out, int32_t out_cap, int32_t *out_len);

/* Re-serializes a JSON document as compact JSON. */
int32_t nox_json_compact(const uint8_t *json, int32_t json_len,
    uint8_t *out, int32_t out_cap, int32_t *out_len);

/*
 * Time values (JWT exp/nbf, an introspection exp, expires_in) are read one
 * way everywhere: any JSON number form (integer, fraction, exponent) as
 * whole seconds rounded down; whole seconds outside int64 are
 * NOX_TIME_INVALID, never "forever".
 */

/*
 * Reads an RFC 7662 introspection response at time `now` (Unix seconds):
 * NOX_OK when "active" is true and "exp" (if any, null = none) is after
 * now; *expires_in is then exp - now (>= 1), or 0 without exp.
 * NOX_RESPONSE_INACTIVE when "active" is false; NOX_EXPIRED when it is
 * true but exp <= now; NOX_TIME_INVALID when exp is not a number within
 * int64; NOX_UTF8_INVALID when the document is not UTF-8; else a decision
 * about the document.  Other members are read with nox_json_get.
 */
int32_t nox_introspect_parse(const uint8_t *json, int32_t json_len,
    int64_t now, int64_t *expires_in);

/*
 * Reads an RFC 8693 token exchange response.  On NOX_OK, out holds the
 * unescaped "access_token" (*token_len bytes), then "token_type"
 * (*type_len bytes, -1 when absent), then "issued_token_type" (*issued_len
 * bytes, -1 when absent).  out_cap >= json_len always suffices.
 * NOX_TOKEN_CHARS when the token holds a control character or invalid
 * UTF-8; NOX_UTF8_INVALID when the document is not UTF-8.
 * *expires_in: "expires_in" in whole seconds rounded down (a number in any
 * form, or a string of digits), 0 when zero or negative, -1 when absent,
 * unusable or beyond int64.
 */
int32_t nox_exchange_parse(const uint8_t *json, int32_t json_len,
    uint8_t *out, int32_t out_cap, int32_t *token_len, int32_t *type_len,
    int32_t *issued_len, int64_t *expires_in);

/*
 * Classifies a token endpoint's answer (RFC 6749 5.2, RFC 8693 2.2.2) by
 * its HTTP status and JSON body before nox_exchange_parse reads it: NOX_OK
 * for a 2xx answer without an "error" member; NOX_STS_REJECTED for a 4xx
 * or an "error" (invalid_grant, invalid_target, unauthorized_client ...),
 * NOX_STS_FORBIDDEN for "access_denied", "invalid_scope" and
 * "insufficient_scope", with the code in out (*code_len bytes, printable
 * ASCII, at most NOX_STS_ERROR_MAX, 0 when there is none; out_cap >=
 * NOX_STS_ERROR_MAX always suffices); NOX_STS_SERVER_ERROR for 1xx, 3xx,
 * 5xx.  (nox_sts_response classifies OAuth errors the same way.)
 */
int32_t nox_token_error(int32_t http_status, const uint8_t *body,
    int32_t body_len, uint8_t *out, int32_t out_cap, int32_t *code_len);

/*
 * The top-level member `name` of a JSON object (a decoded payload) read
 * as a time: NOX_OK with *seconds; NOX_NOT_FOUND when there is no such
 * member (or the document is not an object); NOX_TIME_INVALID when it is
 * not a number or out of int64.  (The verified-token cache's TTL.)
 */
int32_t nox_numeric_date(const uint8_t *json, int32_t json_len,
    const uint8_t *name, int32_t name_len, int64_t *seconds);

/* SHA-256 of data into out (NOX_SHA256_LEN bytes): cache keys. */
int32_t nox_sha256(const uint8_t *data, int32_t len, uint8_t *out,
    int32_t out_cap);

/* ---- Security Token Service exchange ---------------------------------- */

/*
 * An STS exchange configuration: built once per location per worker (and
 * once in the configuration validator child, to check it).  settings holds
 * n_settings buffers: name, value, name, value, ...  Names (all optional
 * unless the type needs them; the shim has already checked that required
 * ones are present and that enumerations are valid):
 *
 *   type            "wstrust" | "ropc" | "otx" | "cc" | "jwt" |
 *                   "introspect"
 *   endpoint        the STS URL as configured (wsa:To and soapAction of
 *                   WS-Trust; the client assertion's default aud); for
 *                   type jwt: the private JWK (JSON)
 *   auth            none | client_secret_basic | client_secret_post |
 *                   client_secret_jwt | private_key_jwt | client_cert |
 *                   basic   (client_cert: TLS only, nothing in the body)
 *   client_id, client_secret, username, password, jwk (private JWK of
 *   private_key_jwt), kid (overrides the JWK's kid), aud (client assertion
 *   audience; for type jwt: the minted token's aud), alg (client assertion
 *   or minted token algorithm; default from the key: RS256, ES256 by
 *   curve, EdDSA; HS256 for client_secret_jwt), iss, sub (type jwt)
 *   params          a form string "a=1&b=2" of extra parameters (values
 *                   decoded, re-encoded when sent); for otx, a
 *                   subject_token_type here replaces the default
 *   applies_to, token_type, value_type, wsa_to      (wstrust)
 *   audience, scope, resource (repeatable), requested_token_type,
 *   subject_token_type, actor_token, actor_token_type        (otx)
 *   expiry          cache lifetime cap in seconds (default 300)
 *   claims          type jwt: projection of the source claims, e.g.
 *                   "{sub, email, roles: .realm_access.roles}"
 *   lifetime        type jwt: exp = now + lifetime unless the source
 *                   has exp (default 60)
 *
 * On a decision, *detail is the index of the offending pair (0-based).
 */
int32_t nox_sts_create(const nox_buf_t *settings, int32_t n_settings,
    int64_t *handle, int32_t *detail);
int32_t nox_sts_free(int64_t handle);

/*
 * values: n_values == n_settings / 2 entries, one per setting pair; an
 * entry with data == NULL means "the configured value", otherwise the value
 * of this request (a setting whose configured value had variables,
 * evaluated by the shim).  The same convention for every call below.
 */

/* The cache key: SHA-256 over the settings (with this request's values)
 * and the source token, into out (NOX_SHA256_LEN bytes). */
int32_t nox_sts_key(int64_t handle, const uint8_t *source,
    int32_t source_len, const nox_buf_t *values, int32_t n_values,
    uint8_t *out, int32_t out_cap);

/*
 * Builds the STS request for a source token at time `now`: out receives
 * the body (lens[0] bytes), then the Authorization header value (lens[1]
 * bytes, 0: none), then the SOAPAction header value (lens[2], 0: none).
 * The content type follows from the type (WS-Trust:
 * "application/soap+xml; charset=utf-8", else form-urlencoded).
 * Type jwt: out receives the minted token (lens[0]), *ttl its cache
 * lifetime.  NOX_E_BUFFER_TOO_SMALL sets lens[0] to the capacity needed.
 * NOX_SOURCE_INVALID when the source cannot be used.
 */
int32_t nox_sts_request(int64_t handle, const uint8_t *source,
    int32_t source_len, const nox_buf_t *values, int32_t n_values,
    int64_t now, uint8_t *out, int32_t out_cap, int32_t *lens,
    int64_t *ttl);

/*
 * Reads the STS answer (its HTTP status and body) at time `now`.  NOX_OK:
 * out holds the target token (lens[0]), then issued_token_type (lens[1],
 * -1 absent), then token_type (lens[2], -1 absent); *ttl is how long it may
 * be cached: min(expiry, lifetime - a margin), 0 = do not cache.
 * NOX_STS_REJECTED / NOX_STS_FORBIDDEN: out holds the OAuth error code or
 * SOAP fault code (lens[0] bytes, printable ASCII, at most
 * NOX_STS_ERROR_MAX; 0 when there is none).  out_cap >= body_len + 256
 * always suffices.
 */
int32_t nox_sts_response(int64_t handle, int32_t http_status,
    const uint8_t *body, int32_t body_len, int64_t now, uint8_t *out,
    int32_t out_cap, int32_t *lens, int64_t *ttl);

/* ---- per-issuer providers (auth_jwt_provider) ------------------------- */

/*
 * The "iss" of a compact JWS, NOT verified (to choose the provider whose
 * keys then verify it): the payload must decode as verification decodes
 * it (strict base64url, UTF-8, a JSON object without repeated names).
 * NOX_OK: out holds the unescaped issuer (*out_len bytes);
 * NOX_NOT_FOUND: no "iss" or not a string; NOX_TOKEN_MALFORMED,
 * NOX_TOKEN_TOO_LARGE; NOX_E_BUFFER_TOO_SMALL with *out_len the size
 * needed (out_cap >= token_len always suffices).
 */
int32_t nox_jwt_issuer(const uint8_t *token, int32_t token_len,
    uint8_t *out, int32_t out_cap, int32_t *out_len);

/*
 * Makes a policy a provider's: after the signature and exp/nbf, "iss" must
 * equal issuer (NOX_ISSUER_MISMATCH), then the options: NOX_PROFILE_AT_JWT
 * (NOX_AT_TYPE_MISMATCH), NOX_PROFILE_REQUIRE_EXP (NOX_EXP_MISSING,
 * NOX_EXPIRED whatever NOX_POLICY_VALIDATE_EXP says), max_lifetime > 0:
 * exp - iat at most that many seconds (NOX_EXP_MISSING, NOX_IAT_MISSING,
 * NOX_LIFETIME_TOO_LONG).  nox_jwt_check runs them too.
 * NOX_VALUE_TYPE_INVALID for an empty or non-UTF-8 issuer.
 */
int32_t nox_policy_set_profile(int64_t policy, const uint8_t *issuer,
    int32_t issuer_len, int32_t flags, int64_t max_lifetime);

/*
 * Adds an audience to a provider's policy (after nox_policy_set_profile):
 * with one or more, "aud" (a string or an array of strings) must name one
 * of them (NOX_AUDIENCE_MISMATCH).
 */
int32_t nox_policy_add_audience(int64_t policy, const uint8_t *audience,
    int32_t audience_len);

/* ---- second-level cache entries (Redis) ------------------------------ */

/*
 * An entry for a shared cache: AES-256-GCM with a key derived (HKDF-SHA256)
 * from secret (at least 16 bytes), a random nonce, and aad (the entry's
 * Redis key: prefix, configuration identity and digest) as associated
 * data, over expires (absolute, Unix seconds), aux and the payload.
 * NOX_OK with *out_len bytes in out; NOX_E_BUFFER_TOO_SMALL: *out_len holds
 * the size needed (payload_len + NOX_CACHE_SEAL_OVERHEAD); NOX_E_ARGUMENT
 * for a secret shorter than 16 bytes.
 */
int32_t nox_cache_seal(const uint8_t *secret, int32_t secret_len,
    const uint8_t *aad, int32_t aad_len, int64_t expires, int32_t aux,
    const uint8_t *payload, int32_t payload_len, uint8_t *out,
    int32_t out_cap, int32_t *out_len);

/*
 * Opens an entry of nox_cache_seal: NOX_OK with the payload (*out_len
 * bytes) in out, *expires and *aux; NOX_DECRYPT_FAILED for anything that
 * does not authenticate with this secret and aad (another key, another
 * identity, tampered or foreign bytes): a miss; NOX_E_BUFFER_TOO_SMALL:
 * *out_len holds the payload's size.
 */
int32_t nox_cache_open(const uint8_t *secret, int32_t secret_len,
    const uint8_t *aad, int32_t aad_len, const uint8_t *sealed,
    int32_t sealed_len, uint8_t *out, int32_t out_cap, int32_t *out_len,
    int64_t *expires, int32_t *aux);
/*
 * Decides, without verifying, whether a token is a JWS that a location
 * with auth_jwt_introspect verifies locally: NOX_OK when it has the
 * compact JWS form (three strict base64url parts) and a header that is a
 * JSON object naming a supported signing "alg" and no "enc".  iss then
 * receives the payload's unverified "iss" string, unescaped (*iss_len
 * bytes; -1 when the payload is not a JSON object or "iss" is not a
 * string).  NOX_ALG_NONE for alg "none"; NOX_ALG_UNSUPPORTED for a
 * missing, unknown or JWE alg, or an "enc"; NOX_TOKEN_MALFORMED,
 * NOX_TOKEN_TOO_LARGE otherwise.  iss_cap >= token_len always suffices.
 */
int32_t nox_jws_probe(const uint8_t *token, int32_t token_len, uint8_t *iss,
    int32_t iss_cap, int32_t *iss_len);

#endif /* NGX_OAUTH_ABI_H */
