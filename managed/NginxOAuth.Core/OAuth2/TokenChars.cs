using System;
using System.Text.Unicode;

namespace NginxOAuth.Core.OAuth2;

/// <summary>
/// What a token from an IdP may hold before it goes into a request header
/// (Authorization: Bearer ...) or a variable: printable ASCII, tab, and
/// valid UTF-8 from 0x80 on. CR, LF, NUL, the other C0 controls and DEL are
/// refused (NOX_TOKEN_CHARS): a CR/LF would end the header line and start a
/// header of the IdP's choosing at the upstream. The STS core applies the
/// same rule to its target tokens.
/// </summary>
public static class TokenChars
{
    public static bool Valid(ReadOnlySpan<byte> token)
    {
        foreach (byte b in token)
        {
            if ((b < 0x20 && b != 0x09) || b == 0x7F)
            {
                return false;
            }
        }
        return Utf8.IsValid(token);
    }
}
