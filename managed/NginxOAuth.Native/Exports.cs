using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NginxOAuth.Core;
using NginxOAuth.Core.Cache;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.OAuth2;
using NginxOAuth.Core.Policy;
using NginxOAuth.Core.Sts;

namespace NginxOAuth.Native;

/// <summary>
/// The C ABI of ngx_oauth_abi.h. Each export is a short adapter: check the
/// arguments, wrap pointers as spans, call the core, map the result. Nothing
/// escapes: any exception is NOX_E_INTERNAL. Output pointers other than
/// handles may be NULL when the caller does not want them.
/// </summary>
internal static unsafe class Exports
{
    [UnmanagedCallersOnly(EntryPoint = "nox_abi_version")]
    public static int AbiVersion() => Abi.NOX_ABI_VERSION;

    [UnmanagedCallersOnly(EntryPoint = "nox_keyset_load")]
    public static int KeySetLoad(byte* data, int len, int format, long* handle, int* detail)
    {
        try
        {
            Set(detail, -1);
            if (!IsBuffer(data, len) || handle == null || format is not (Abi.NOX_KEYS_JWKS or Abi.NOX_KEYS_KEYVAL))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            *handle = 0;
            KeySetResult result = KeySetLoader.Load(new ReadOnlySpan<byte>(data, len), (KeySetFormat)format);
            if (result.KeySet is null)
            {
                Set(detail, result.Detail);
                return (int)result.Error;
            }
            *handle = Handles.Add(result.KeySet);
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_keyset_free")]
    public static int KeySetFree(long handle)
    {
        try
        {
            KeySet? keySet = Handles.Remove<KeySet>(handle);
            if (keySet is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            keySet.Dispose();
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_keyset_skipped")]
    public static int KeySetSkipped(long handle, int index, int* keyIndex, int* reason, byte* kid, int kidCap,
        int* kidLen)
    {
        try
        {
            if (keyIndex == null || reason == null || kidLen == null || !IsBuffer(kid, kidCap) || index < 0)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            KeySet? keySet = Handles.Get<KeySet>(handle);
            if (keySet is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            return SkippedKeyOf(keySet, index, keyIndex, reason, new Span<byte>(kid, kidCap), kidLen);
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    private static int SkippedKeyOf(KeySet keySet, int index, int* keyIndex, int* reason, Span<byte> kid,
        int* kidLen)
    {
        if (index >= keySet.Skipped.Count)
        {
            return Abi.NOX_NOT_FOUND;
        }
        SkippedKey skipped = keySet.Skipped[index];
        *keyIndex = skipped.Index;
        *reason = (int)skipped.Reason;
        if (skipped.Kid is null)
        {
            *kidLen = -1;
            return Abi.NOX_OK;
        }
        int n = Math.Min(skipped.Kid.Length, kid.Length);
        skipped.Kid.AsSpan(0, n).CopyTo(kid);
        *kidLen = n;
        return Abi.NOX_OK;
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_keyset_count")]
    public static int KeySetCount(long handle, int* verify, int* decrypt)
    {
        try
        {
            if (verify == null || decrypt == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            KeySet? keySet = Handles.Get<KeySet>(handle);
            if (keySet is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            *verify = keySet.Count;
            *decrypt = keySet.DecryptionKeys.Length;
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_json_check")]
    public static int JsonCheck(byte* data, int len)
    {
        try
        {
            if (!IsBuffer(data, len))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            // Same acceptance as nox_policy_add_rule's json= values: a
            // repeated member name is ambiguous, so it is not accepted.
            return JsonGuard.Check(new ReadOnlySpan<byte>(data, len)) is JsonShape.Invalid or JsonShape.DuplicateMember
                ? Abi.NOX_JSON_INVALID
                : Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_create")]
    public static int PolicyCreate(int flags, long leewaySec, long* handle)
    {
        try
        {
            const int known = Abi.NOX_POLICY_VALIDATE_EXP | Abi.NOX_POLICY_VALIDATE_SIG;
            if (handle == null || (flags & ~known) != 0 || leewaySec < 0)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            var policy = new VerificationPolicy((flags & Abi.NOX_POLICY_VALIDATE_EXP) != 0,
                (flags & Abi.NOX_POLICY_VALIDATE_SIG) != 0, leewaySec);
            *handle = Handles.Add(policy);
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_add_keyset")]
    public static int PolicyAddKeySet(long policy, long keyset)
    {
        try
        {
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            KeySet? k = Handles.Get<KeySet>(keyset);
            if (p is null || k is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            p.AddKeySet(k);
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_add_revocation")]
    public static int PolicyAddRevocation(long policy, int kind, byte* json, int len)
    {
        try
        {
            if (!IsBuffer(json, len) || kind is not (Abi.NOX_REVOKE_SUB or Abi.NOX_REVOKE_KID))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            return (int)p.AddRevocation((RevocationKind)kind, new ReadOnlySpan<byte>(json, len));
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_set_nested")]
    public static int PolicySetNested(long policy, byte* delim, int delimLen, byte* quote, int quoteLen)
    {
        try
        {
            if (!IsBuffer(delim, delimLen) || !IsBuffer(quote, quoteLen))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            p.SetNested(new ReadOnlySpan<byte>(delim, delimLen), new ReadOnlySpan<byte>(quote, quoteLen));
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_add_rule")]
    public static int PolicyAddRule(long policy, int target, byte* path, int pathLen, int op, int valueKind,
        byte* value, int valueLen)
    {
        try
        {
            if (!IsBuffer(path, pathLen) || !IsBuffer(value, valueLen)
                || target is not (Abi.NOX_TARGET_CLAIM or Abi.NOX_TARGET_HEADER)
                || valueKind is not (Abi.NOX_VALUE_STRING or Abi.NOX_VALUE_JSON or Abi.NOX_VALUE_VARIABLE))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            if ((op & ~(Abi.NOX_OP_MASK | Abi.NOX_OP_NOT)) != 0)
            {
                return Abi.NOX_OPERATOR_INVALID;
            }
            return (int)p.AddRule((RuleTarget)target, new ReadOnlySpan<byte>(path, pathLen),
                (RuleOperator)(op & Abi.NOX_OP_MASK), (op & Abi.NOX_OP_NOT) != 0,
                (RuleValueKind)valueKind, new ReadOnlySpan<byte>(value, valueLen));
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_free")]
    public static int PolicyFree(long policy)
    {
        try
        {
            VerificationPolicy? p = Handles.Remove<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            p.Dispose(); // the key sets stay: they are shared, not owned
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_jwt_verify")]
    public static int JwtVerify(long policy, byte* token, int tokenLen, long now, long* extraKeysets, int nExtra,
        NoxBuf* ruleValues, int nValues, byte* output, int outCap, int* headerLen, int* payloadLen, int* detail)
    {
        try
        {
            Set(headerLen, -1);
            Set(payloadLen, -1);
            Set(detail, -1);
            if (!IsBuffer(token, tokenLen) || !IsBuffer(output, outCap)
                || !IsArray(extraKeysets, nExtra) || !IsArray(ruleValues, nValues)
                || !NativeRuleValues.AreValid(ruleValues, nValues))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            KeySet[]? extra = ResolveKeySets(extraKeysets, nExtra);
            if (p is null || extra is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            if (tokenLen > Abi.NOX_MAX_TOKEN)
            {
                return Abi.NOX_TOKEN_TOO_LARGE; // before the buffer check: the caller may cap its buffer
            }
            if (outCap < JwtVerifier.OutputCapacity(p, tokenLen))
            {
                return Abi.NOX_E_BUFFER_TOO_SMALL;
            }

            VerifyResult result = JwtVerifier.Verify(p, new ReadOnlySpan<byte>(token, tokenLen), now, extra,
                new NativeRuleValues(ruleValues, nValues), new Span<byte>(output, outCap));
            Set(headerLen, result.HeaderLength);
            Set(payloadLen, result.PayloadLength);
            Set(detail, result.Detail);
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_set_type")]
    public static int PolicySetType(long policy, int type)
    {
        try
        {
            if (type is not (Abi.NOX_JWT_SIGNED or Abi.NOX_JWT_ENCRYPTED or Abi.NOX_JWT_NESTED))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            p.SetTokenType((JwtType)type);
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_jwt_verify_ex")]
    public static int JwtVerifyEx(long policy, byte* token, int tokenLen, long now, long* extraKeysets, int nExtra,
        NoxBuf* ruleValues, int nValues, byte* output, int outCap, int* lens, int* detail)
    {
        try
        {
            if (lens == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            lens[0] = lens[1] = lens[2] = -1;
            Set(detail, -1);
            if (!IsBuffer(token, tokenLen) || !IsBuffer(output, outCap)
                || !IsArray(extraKeysets, nExtra) || !IsArray(ruleValues, nValues)
                || !NativeRuleValues.AreValid(ruleValues, nValues))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            KeySet[]? extra = ResolveKeySets(extraKeysets, nExtra);
            if (p is null || extra is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            if (tokenLen > Abi.NOX_MAX_TOKEN)
            {
                return Abi.NOX_TOKEN_TOO_LARGE;
            }
            if (outCap < JwtVerifier.OutputCapacity(p, tokenLen))
            {
                return Abi.NOX_E_BUFFER_TOO_SMALL;
            }

            VerifyResult result = JwtVerifier.Verify(p, new ReadOnlySpan<byte>(token, tokenLen), now, extra,
                new NativeRuleValues(ruleValues, nValues), new Span<byte>(output, outCap));
            lens[0] = result.HeaderLength;
            lens[1] = result.PayloadLength;
            lens[2] = result.InnerLength;
            Set(detail, result.Detail);
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_jwt_check")]
    public static int JwtCheck(long policy, byte* header, int headerLen, byte* payload, int payloadLen, long now,
        NoxBuf* ruleValues, int nValues, int* detail)
    {
        try
        {
            Set(detail, -1);
            if (!IsBuffer(header, headerLen) || !IsBuffer(payload, payloadLen)
                || !IsArray(ruleValues, nValues) || !NativeRuleValues.AreValid(ruleValues, nValues))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            VerifyResult result = JwtVerifier.CheckDecoded(p, new ReadOnlySpan<byte>(header, headerLen),
                new ReadOnlySpan<byte>(payload, payloadLen), now, new NativeRuleValues(ruleValues, nValues));
            Set(detail, result.Detail);
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_json_get")]
    public static int JsonGet(byte* json, int jsonLen, byte* path, int pathLen, int pathKind, byte* delim,
        int delimLen, byte* quote, int quoteLen, byte* output, int outCap, int* outLen)
    {
        try
        {
            if (!IsBuffer(json, jsonLen) || !IsBuffer(path, pathLen) || !IsBuffer(delim, delimLen)
                || !IsBuffer(quote, quoteLen) || !IsBuffer(output, outCap) || outLen == null
                || pathKind is not (Abi.NOX_PATH_NAME or Abi.NOX_PATH_NESTED or Abi.NOX_PATH_NAMES))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            *outLen = 0;
            ClaimPathResult parsed = ClaimPath.Parse(new ReadOnlySpan<byte>(path, pathLen), (PathKind)pathKind,
                new ReadOnlySpan<byte>(delim, delimLen), new ReadOnlySpan<byte>(quote, quoteLen));
            JsonReadResult result = JsonRender.Get(new ReadOnlySpan<byte>(json, jsonLen), parsed,
                new Span<byte>(output, outCap));
            *outLen = result.Length;
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_json_compact")]
    public static int JsonCompact(byte* json, int jsonLen, byte* output, int outCap, int* outLen)
    {
        try
        {
            if (!IsBuffer(json, jsonLen) || !IsBuffer(output, outCap) || outLen == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            JsonReadResult result = JsonRender.Compact(new ReadOnlySpan<byte>(json, jsonLen),
                new Span<byte>(output, outCap));
            *outLen = result.Length;
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_introspect_parse")]
    public static int IntrospectParse(byte* json, int jsonLen, long now, long* expiresIn)
    {
        try
        {
            if (!IsBuffer(json, jsonLen) || expiresIn == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            IntrospectionResult result = TokenResponses.ParseIntrospection(new ReadOnlySpan<byte>(json, jsonLen), now);
            *expiresIn = result.ExpiresIn;
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_exchange_parse")]
    public static int ExchangeParse(byte* json, int jsonLen, byte* output, int outCap, int* tokenLen, int* typeLen,
        int* issuedLen, long* expiresIn)
    {
        try
        {
            if (!IsBuffer(json, jsonLen) || !IsBuffer(output, outCap) || tokenLen == null || typeLen == null
                || issuedLen == null || expiresIn == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            ExchangeResult result = TokenResponses.ParseExchange(new ReadOnlySpan<byte>(json, jsonLen),
                new Span<byte>(output, outCap));
            *tokenLen = result.TokenLength;
            *typeLen = result.TypeLength;
            *issuedLen = result.IssuedTypeLength;
            *expiresIn = result.ExpiresIn;
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_token_error")]
    public static int TokenError(int httpStatus, byte* body, int bodyLen, byte* output, int outCap, int* codeLen)
    {
        try
        {
            if (!IsBuffer(body, bodyLen) || !IsBuffer(output, outCap) || codeLen == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            TokenErrorResult result = TokenErrors.Classify(httpStatus, new ReadOnlySpan<byte>(body, bodyLen),
                new Span<byte>(output, outCap));
            *codeLen = result.CodeLength;
            return (int)result.Kind;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_numeric_date")]
    public static int NumericDateRead(byte* json, int jsonLen, byte* name, int nameLen, long* seconds)
    {
        try
        {
            if (!IsBuffer(json, jsonLen) || !IsBuffer(name, nameLen) || seconds == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            *seconds = 0;
            if (!NumericDate.TryReadMember(new ReadOnlySpan<byte>(json, jsonLen), new ReadOnlySpan<byte>(name, nameLen),
                    out NumericDateStatus status, out long value))
            {
                return Abi.NOX_NOT_FOUND;
            }
            if (status != NumericDateStatus.Ok)
            {
                return Abi.NOX_TIME_INVALID;
            }
            *seconds = value;
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_sha256")]
    public static int Sha256(byte* data, int len, byte* output, int outCap)
    {
        try
        {
            if (!IsBuffer(data, len) || !IsBuffer(output, outCap))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            return TokenResponses.Sha256(new ReadOnlySpan<byte>(data, len), new Span<byte>(output, outCap))
                ? Abi.NOX_OK
                : Abi.NOX_E_BUFFER_TOO_SMALL;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_sts_create")]
    public static int StsCreate(NoxBuf* settings, int nSettings, long* handle, int* detail)
    {
        try
        {
            Set(detail, -1);
            if (handle == null || !IsArray(settings, nSettings) || nSettings % 2 != 0
                || !NativeStsValues.AreValid(settings, nSettings, allowNull: true))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            *handle = 0;
            StsCreateResult result = StsSettings.Create(NativeStsValues.Pairs(settings, nSettings));
            if (result.Settings is null)
            {
                Set(detail, result.Detail);
                return (int)result.Error;
            }
            *handle = Handles.Add(result.Settings);
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_sts_free")]
    public static int StsFree(long handle)
    {
        try
        {
            StsSettings? settings = Handles.Remove<StsSettings>(handle);
            if (settings is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            settings.Dispose();
            return Abi.NOX_OK;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_sts_key")]
    public static int StsKey(long handle, byte* source, int sourceLen, NoxBuf* values, int nValues, byte* output,
        int outCap)
    {
        try
        {
            if (!IsBuffer(source, sourceLen) || !IsBuffer(output, outCap) || !IsArray(values, nValues)
                || !NativeStsValues.AreValid(values, nValues, allowNull: true))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            StsSettings? settings = Handles.Get<StsSettings>(handle);
            if (settings is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            if (nValues != 0 && nValues != settings.Count)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            return StsExchange.CacheKey(settings, new ReadOnlySpan<byte>(source, sourceLen),
                new NativeStsValues(values, nValues), new Span<byte>(output, outCap))
                ? Abi.NOX_OK
                : Abi.NOX_E_BUFFER_TOO_SMALL;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_sts_request")]
    public static int StsRequest(long handle, byte* source, int sourceLen, NoxBuf* values, int nValues, long now,
        byte* output, int outCap, int* lens, long* ttl)
    {
        try
        {
            if (lens == null || !IsBuffer(source, sourceLen) || !IsBuffer(output, outCap) || !IsArray(values, nValues)
                || !NativeStsValues.AreValid(values, nValues, allowNull: true))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            lens[0] = lens[1] = lens[2] = 0;
            SetLong(ttl, 0);
            StsSettings? settings = Handles.Get<StsSettings>(handle);
            if (settings is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            if (nValues != 0 && nValues != settings.Count)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            StsRequestResult result = StsExchange.CreateRequest(settings, new ReadOnlySpan<byte>(source, sourceLen),
                new NativeStsValues(values, nValues), now, new Span<byte>(output, outCap));
            lens[0] = result.Error == StsError.BufferTooSmall ? result.Needed : result.BodyLength;
            lens[1] = result.AuthorizationLength;
            lens[2] = result.ActionLength;
            SetLong(ttl, result.Ttl);
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_sts_response")]
    public static int StsResponse(long handle, int httpStatus, byte* body, int bodyLen, long now, byte* output,
        int outCap, int* lens, long* ttl)
    {
        try
        {
            if (lens == null || !IsBuffer(body, bodyLen) || !IsBuffer(output, outCap))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            lens[0] = 0;
            lens[1] = lens[2] = -1;
            SetLong(ttl, 0);
            StsSettings? settings = Handles.Get<StsSettings>(handle);
            if (settings is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            StsResponseResult result = StsExchange.ReadResponse(settings, httpStatus,
                new ReadOnlySpan<byte>(body, bodyLen), now, new Span<byte>(output, outCap));
            lens[0] = result.TokenLength;
            lens[1] = result.IssuedTypeLength;
            lens[2] = result.TokenTypeLength;
            SetLong(ttl, result.Ttl);
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_jwt_issuer")]
    public static int JwtIssuer(byte* token, int tokenLen, byte* output, int outCap, int* outLen)
    {
        try
        {
            if (!IsBuffer(token, tokenLen) || !IsBuffer(output, outCap) || outLen == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            *outLen = 0;
            IssuerResult result = ProviderChecks.ReadIssuer(new ReadOnlySpan<byte>(token, tokenLen),
                new Span<byte>(output, outCap), out int length);
            *outLen = length;
            return (int)result;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_set_profile")]
    public static int PolicySetProfile(long policy, byte* issuer, int issuerLen, int flags, long maxLifetime)
    {
        try
        {
            const int known = Abi.NOX_PROFILE_AT_JWT | Abi.NOX_PROFILE_REQUIRE_EXP;
            if (!IsBuffer(issuer, issuerLen) || (flags & ~known) != 0 || maxLifetime < 0)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            return (int)p.SetProfile(new ReadOnlySpan<byte>(issuer, issuerLen), (ProviderOptions)flags, maxLifetime);
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_policy_add_audience")]
    public static int PolicyAddAudience(long policy, byte* audience, int audienceLen)
    {
        try
        {
            if (!IsBuffer(audience, audienceLen))
            {
                return Abi.NOX_E_ARGUMENT;
            }
            VerificationPolicy? p = Handles.Get<VerificationPolicy>(policy);
            if (p is null)
            {
                return Abi.NOX_E_HANDLE;
            }
            return (int)p.AddAudience(new ReadOnlySpan<byte>(audience, audienceLen));
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_jws_probe")]
    public static int JwsProbeToken(byte* token, int tokenLen, byte* iss, int issCap, int* issLen)
    {
        try
        {
            if (!IsBuffer(token, tokenLen) || !IsBuffer(iss, issCap) || issLen == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            *issLen = -1;
            JwsProbeResult result = JwsProbe.Probe(new ReadOnlySpan<byte>(token, tokenLen),
                new Span<byte>(iss, issCap));
            *issLen = result.IssuerLength;
            return (int)result.Error;
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    /// <summary>A (pointer, length) pair is usable: length not negative, pointer set unless empty.</summary>
    [UnmanagedCallersOnly(EntryPoint = "nox_cache_seal")]
    public static int CacheSeal(byte* secret, int secretLen, byte* aad, int aadLen, long expires, int aux,
        byte* payload, int payloadLen, byte* output, int outCap, int* outLen)
    {
        try
        {
            if (!IsBuffer(secret, secretLen) || !IsBuffer(aad, aadLen) || !IsBuffer(payload, payloadLen)
                || !IsBuffer(output, outCap) || outLen == null || secretLen < SealedEntry.MinSecret
                || payloadLen > int.MaxValue - SealedEntry.Overhead)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            return SealCore(new ReadOnlySpan<byte>(secret, secretLen), new ReadOnlySpan<byte>(aad, aadLen), expires,
                aux, new ReadOnlySpan<byte>(payload, payloadLen), new Span<byte>(output, outCap), outLen);
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nox_cache_open")]
    public static int CacheOpen(byte* secret, int secretLen, byte* aad, int aadLen, byte* sealedEntry,
        int sealedLen, byte* output, int outCap, int* outLen, long* expires, int* aux)
    {
        try
        {
            if (!IsBuffer(secret, secretLen) || !IsBuffer(aad, aadLen) || !IsBuffer(sealedEntry, sealedLen)
                || !IsBuffer(output, outCap) || outLen == null || expires == null || aux == null)
            {
                return Abi.NOX_E_ARGUMENT;
            }
            return OpenCore(new ReadOnlySpan<byte>(secret, secretLen), new ReadOnlySpan<byte>(aad, aadLen),
                new ReadOnlySpan<byte>(sealedEntry, sealedLen), new Span<byte>(output, outCap), outLen, expires, aux);
        }
        catch
        {
            return Abi.NOX_E_INTERNAL;
        }
    }

    // one method deeper than the exports: crypto never runs in an export body
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int SealCore(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> aad, long expires, int aux,
        ReadOnlySpan<byte> payload, Span<byte> output, int* outLen)
    {
        *outLen = SealedEntry.SealedLength(payload.Length);
        if (output.Length < *outLen)
        {
            return Abi.NOX_E_BUFFER_TOO_SMALL;
        }
        int written = SealedEntry.Seal(secret, aad, expires, aux, payload, output);
        return written < 0 ? Abi.NOX_E_ARGUMENT : Abi.NOX_OK;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int OpenCore(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> sealedEntry,
        Span<byte> output, int* outLen, long* expires, int* aux)
    {
        SealedEntryError error = SealedEntry.Open(secret, aad, sealedEntry, output, out int length, out long exp,
            out int a);
        *outLen = length;
        *expires = exp;
        *aux = a;
        return error switch
        {
            SealedEntryError.None => Abi.NOX_OK,
            SealedEntryError.BufferTooSmall => Abi.NOX_E_BUFFER_TOO_SMALL,
            _ => Abi.NOX_DECRYPT_FAILED,
        };
    }

    private static bool IsBuffer(byte* data, int len) => len >= 0 && (data != null || len == 0);

    private static bool IsArray<T>(T* items, int count)
        where T : unmanaged => count >= 0 && (items != null || count == 0);

    private static void Set(int* target, int value)
    {
        if (target != null)
        {
            *target = value;
        }
    }

    private static void SetLong(long* target, long value)
    {
        if (target != null)
        {
            *target = value;
        }
    }

    /// <summary>Null when any handle is not a live key set.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static KeySet[]? ResolveKeySets(long* handles, int count)
    {
        if (count == 0)
        {
            return Array.Empty<KeySet>();
        }
        var sets = new KeySet[count];
        for (int i = 0; i < count; i++)
        {
            KeySet? set = Handles.Get<KeySet>(handles[i]);
            if (set is null)
            {
                return null;
            }
            sets[i] = set;
        }
        return sets;
    }
}

/// <summary>nox_buf_t rule values, read in place.</summary>
internal readonly unsafe struct NativeRuleValues : IRuleValues
{
    private readonly NoxBuf* _values;
    private readonly int _count;

    public NativeRuleValues(NoxBuf* values, int count)
    {
        _values = values;
        _count = count;
    }

    public static bool AreValid(NoxBuf* values, int count)
    {
        for (int i = 0; i < count; i++)
        {
            if (values[i].Len < 0 || (values[i].Data == null && values[i].Len != 0))
            {
                return false;
            }
        }
        return true;
    }

    public bool TryGet(int index, out ReadOnlySpan<byte> value)
    {
        if ((uint)index < (uint)_count && _values[index].Len > 0)
        {
            value = new ReadOnlySpan<byte>(_values[index].Data, _values[index].Len);
            return true;
        }
        value = default;
        return false;
    }
}

/// <summary>nox_buf_t STS setting pairs and per-request values (data NULL: the configured value).</summary>
internal readonly unsafe struct NativeStsValues : IStsValues
{
    private readonly NoxBuf* _values;

    public NativeStsValues(NoxBuf* values, int count)
    {
        _values = values;
        Count = count;
    }

    public int Count { get; }

    /// <summary>Lengths not negative; NULL data only with length 0.</summary>
    public static bool AreValid(NoxBuf* values, int count, bool allowNull = true)
    {
        for (int i = 0; i < count; i++)
        {
            if (values[i].Len < 0 || (values[i].Data == null && (values[i].Len != 0 || !allowNull)))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Copies name, value, name, value, ... into pairs.</summary>
    public static System.Collections.Generic.List<System.Collections.Generic.KeyValuePair<byte[], byte[]>> Pairs(
        NoxBuf* settings, int count)
    {
        var pairs = new System.Collections.Generic.List<System.Collections.Generic.KeyValuePair<byte[], byte[]>>(count / 2);
        for (int i = 0; i + 1 < count; i += 2)
        {
            pairs.Add(new(new ReadOnlySpan<byte>(settings[i].Data, settings[i].Len).ToArray(),
                new ReadOnlySpan<byte>(settings[i + 1].Data, settings[i + 1].Len).ToArray()));
        }
        return pairs;
    }

    public bool TryGet(int index, out ReadOnlySpan<byte> value)
    {
        if ((uint)index < (uint)Count && _values[index].Data != null)
        {
            value = new ReadOnlySpan<byte>(_values[index].Data, _values[index].Len);
            return true;
        }
        value = default;
        return false;
    }
}
