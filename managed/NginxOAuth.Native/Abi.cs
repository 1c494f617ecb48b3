namespace NginxOAuth.Native;

/// <summary>Mirror of native/include/ngx_oauth_abi.h (the single source of truth).</summary>
internal static class Abi
{
    public const int NOX_ABI_VERSION = 6;

    public const int NOX_OK = 0;

    public const int NOX_TOKEN_MALFORMED = 1;
    public const int NOX_TOKEN_TOO_LARGE = 2;
    public const int NOX_ALG_NONE = 3;
    public const int NOX_ALG_UNSUPPORTED = 4;
    public const int NOX_KEY_NOT_FOUND = 5;
    public const int NOX_BAD_SIGNATURE = 6;
    public const int NOX_EXPIRED = 7;
    public const int NOX_NOT_YET_VALID = 8;
    public const int NOX_EXP_MISSING = 9;
    public const int NOX_SUB_REVOKED = 10;
    public const int NOX_KID_REVOKED = 11;
    public const int NOX_CLAIM_FAILED = 12;
    public const int NOX_HEADER_FAILED = 13;
    public const int NOX_RULE_VALUE_INVALID = 14;
    public const int NOX_NO_KEYS = 15;
    public const int NOX_CRIT_UNSUPPORTED = 16;
    public const int NOX_TIME_INVALID = 17;
    public const int NOX_KEY_SKIPPED = 18;
    public const int NOX_RULE_MATCH_LIMIT = 19;

    public const int NOX_NOT_FOUND = 20;

    public const int NOX_TYPE_MISMATCH = 21;
    public const int NOX_DECRYPT_FAILED = 22;
    public const int NOX_ZIP_UNSUPPORTED = 23;

    public const int NOX_JSON_INVALID = 30;
    public const int NOX_JSON_NOT_OBJECT = 31;
    public const int NOX_JSON_EMPTY = 32;
    public const int NOX_KEY_UNKNOWN_KTY = 33;
    public const int NOX_KEY_UNKNOWN_ALG = 34;
    public const int NOX_KEY_UNKNOWN_CURVE = 35;
    public const int NOX_KEY_BAD_PARAMETER = 36;
    public const int NOX_KEY_RSA_TOO_SMALL = 37;
    public const int NOX_KEY_RSA_TOO_LARGE = 38;
    public const int NOX_KEY_HMAC_TOO_SHORT = 39;
    public const int NOX_KEY_BAD_PEM = 40;
    public const int NOX_KEY_ALG_MISMATCH = 41;
    public const int NOX_KEYS_TOO_MANY = 42;
    public const int NOX_KEYS_TOO_LARGE = 43;
    public const int NOX_KEY_EMPTY_KID = 44;
    public const int NOX_PATH_INVALID = 45;
    public const int NOX_OPERATOR_INVALID = 46;
    public const int NOX_VALUE_TYPE_INVALID = 47;
    public const int NOX_PATTERN_INVALID = 48;
    public const int NOX_KEY_ENCRYPTION = 49;

    public const int NOX_RESPONSE_INACTIVE = 50;
    public const int NOX_RESPONSE_ACTIVE_INVALID = 51;
    public const int NOX_RESPONSE_TOO_LARGE = 52;
    public const int NOX_RESPONSE_NO_TOKEN = 53;

    public const int NOX_STS_REJECTED = 60;
    public const int NOX_STS_FORBIDDEN = 61;
    public const int NOX_STS_SERVER_ERROR = 62;
    public const int NOX_XML_INVALID = 63;
    public const int NOX_XML_DTD = 64;
    public const int NOX_TOKEN_CHARS = 65;
    public const int NOX_UTF8_INVALID = 66;
    public const int NOX_SOURCE_INVALID = 67;

    public const int NOX_STS_SETTING_UNKNOWN = 70;
    public const int NOX_STS_SETTING_INVALID = 71;
    public const int NOX_STS_KEY_INVALID = 72;

    public const int NOX_ISSUER_MISMATCH = 80;
    public const int NOX_AT_TYPE_MISMATCH = 81;
    public const int NOX_LIFETIME_TOO_LONG = 82;
    public const int NOX_IAT_MISSING = 83;
    public const int NOX_AUDIENCE_MISMATCH = 84;

    public const int NOX_E_ARGUMENT = -1;
    public const int NOX_E_BUFFER_TOO_SMALL = -2;
    public const int NOX_E_HANDLE = -3;
    public const int NOX_E_INTERNAL = -4;

    public const int NOX_MAX_TOKEN = 256 * 1024;
    public const int NOX_MAX_HEADER = 16 * 1024;
    public const int NOX_MAX_KEYSET = 1024 * 1024;
    public const int NOX_MAX_KEYS = 256;
    public const int NOX_MAX_IDP_RESPONSE = 64 * 1024;
    public const int NOX_MAX_STS_RESPONSE = 1024 * 1024;
    public const int NOX_STS_ERROR_MAX = 128;
    public const int NOX_SHA256_LEN = 32;
    public const int NOX_CACHE_SEAL_OVERHEAD = 1 + 12 + 16 + 12;

    public const int NOX_KEYS_JWKS = 0;
    public const int NOX_KEYS_KEYVAL = 1;

    public const int NOX_JWT_SIGNED = 0;
    public const int NOX_JWT_ENCRYPTED = 1;
    public const int NOX_JWT_NESTED = 2;

    public const int NOX_POLICY_VALIDATE_EXP = 0x1;
    public const int NOX_POLICY_VALIDATE_SIG = 0x2;

    public const int NOX_PROFILE_AT_JWT = 0x1;
    public const int NOX_PROFILE_REQUIRE_EXP = 0x2;

    public const int NOX_REVOKE_SUB = 0;
    public const int NOX_REVOKE_KID = 1;

    public const int NOX_TARGET_CLAIM = 0;
    public const int NOX_TARGET_HEADER = 1;

    public const int NOX_OP_EQ = 0;
    public const int NOX_OP_NE = 1;
    public const int NOX_OP_GT = 2;
    public const int NOX_OP_GE = 3;
    public const int NOX_OP_LT = 4;
    public const int NOX_OP_LE = 5;
    public const int NOX_OP_INTERSECT = 6;
    public const int NOX_OP_NINTERSECT = 7;
    public const int NOX_OP_IN = 8;
    public const int NOX_OP_NIN = 9;
    public const int NOX_OP_MATCH = 10;
    public const int NOX_OP_MASK = 0xff;
    public const int NOX_OP_NOT = 0x100;

    public const int NOX_VALUE_STRING = 0;
    public const int NOX_VALUE_JSON = 1;
    public const int NOX_VALUE_VARIABLE = 2;

    public const int NOX_PATH_NAME = 0;
    public const int NOX_PATH_NESTED = 1;
    public const int NOX_PATH_NAMES = 2;

    public const int NOX_STS_WSTRUST = 1;
    public const int NOX_STS_ROPC = 2;
    public const int NOX_STS_OTX = 3;
    public const int NOX_STS_CC = 4;
    public const int NOX_STS_JWT = 5;
    public const int NOX_STS_INTROSPECT = 6;
}

/// <summary>nox_buf_t.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
internal unsafe struct NoxBuf
{
    public byte* Data;
    public int Len;
    public int Reserved;
}
