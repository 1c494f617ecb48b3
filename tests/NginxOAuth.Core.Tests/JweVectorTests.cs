using System;
using System.Buffers.Text;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// Published JWE vectors: RFC 7516 appendix A, RFC 7520 section 5 (the
/// compact examples), RFC 7518 appendix B (AES_CBC_HMAC_SHA2) and RFC 3394
/// section 4.1 (AES Key Wrap). The payloads are text, so these go through
/// the decryption layer alone. Also: how decryption keys load beside the
/// signing keys a key file skips.
/// </summary>
public sealed class JweVectorTests
{
    // ---- RFC 7516 appendix A ------------------------------------------

    private const string A1Jwk =
        "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"oahUIoWw0K0usKNuOR6H4wkf4oBUXHTxRvgb48E-BVvxkeDNjbC4he8rUWcJoZmds2h7M"
        + "70imEVhRU5djINXtqllXI4DFqcI1DgjT9LewND8MW2Krf3Spsk_ZkoFnilakGygTwpZ3uesH-PFABNIUYpOiN15dsQRkgr0vEhxN92i2as"
        + "bOenSZeyaxziK72UwxrrKoExv6kc5twXTq4h-QChLOln0_mtUZwfsRaMStPs6mS6XrgxnxbWhojf663tuEQueGC-FCMfra36C9knDFGzKs"
        + "Na7LZK2djYgyD3JR_MB_4NUJW_TqOQtwHYbxevoJArm-L5StowjzGy-_bq6Gw\",\"e\":\"AQAB\",\"d\":\"kLdtIj6GbDks_ApCSTYQ"
        + "telcNttlKiOyPzMrXHeI-yk1F7-kpDxY4-WY5NWV5KntaEeXS1j82E375xxhWMHXyvjYecPT9fpwR_M9gV8n9Hrh2anTpTD93Dt62ypW3yD"
        + "sJzBnTnrYu1iwWRgBKrEYY46qAZIrA2xAwnm2X7uGR1hghkqDp0Vqj3kbSCz1XyfCs6_LehBwtxHIyh8Ripy40p24moOAbgxVw3rxT_vlt"
        + "3UVe4WO3JkJOzlpUf-KTVI2Ptgm-dARxTEtE-id-4OJr0h-K-VFs3VSndVTIznSxfyrj8ILL6MG_Uv8YAu7VILSB3lOW085-4qE3DzgrTjgyQ\"}";

    private const string A1Token =
        "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03"
        + "JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwa"
        + "m_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdb"
        + "YaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYI"
        + "zOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ";

    private const string A2Token =
        "eyJhbGciOiJSU0ExXzUiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.UGhIOguC7IuEvf_NPVaXsGMoLOmwvc1GyqlIKOK1nN94nHPoltGRhWhw7"
        + "Zx0-kFm1NJn8LE9XShH59_i8J0PH5ZZyNfGy2xGdULU7sHNF6Gp2vPLgNZ__deLKxGHZ7PcHALUzoOegEI-8E66jX2E4zyJKx-YxzZIItRz"
        + "C5hlRirb6Y5Cl_p-ko3YvkkysZIFNPccxRU7qve1WYPxqbb2Yw8kZqa2rMWI5ng8OtvzlV7elprCbuPhcCdZ6XDP0_F8rkXds2vE4X-ncOI"
        + "M8hAYHHi29NX0mcKiRaD0-D-ljQTP-cFPgwCp6X-nZZd9OHBv-B3oWh2TbqmScqXMR4gp_A.AxY8DCtDaGlsbGljb3RoZQ.KDlTtXchhZTG"
        + "ufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.9hH0vgRfYgPnAHOd8stkvw";

    private const string A3Jwk = "{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"GawgguFyGrWKav7AX4VKUg\"}";

    private const string A3Token =
        "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ."
        + "AxY8DCtDaGlsbGljb3RoZQ.KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.U0m_YmjN04DJvceFICbCVQ";

    // ---- RFC 7520 section 5 -------------------------------------------

    private const string Fellowship =
        "You can trust us to stick with you through thick and thin\u2013to the bitter end. And you can trust us to "
        + "keep any secret of yours\u2013closer than you keep it yourself. But you cannot trust us to let you face "
        + "trouble alone, and go off without a word. We are your friends, Frodo.";

    private const string R52Jwk =
        "{\"kty\":\"RSA\",\"kid\":\"samwise.gamgee@hobbiton.example\",\"use\":\"enc\",\"alg\":\"RSA-OAEP\",\"e\":\"AQAB\","
        + "\"n\":\"wbdxI55VaanZXPY29Lg5hdmv2XhvqAhoxUkanfzf2-5zVUxa6prHRrI4pP1AhoqJRlZfYtWWd5mmHRG2pAHIlh0ySJ9wi0BioZBl1X"
        + "P2e-C-FyXJGcTy0HdKQWlrfhTm42EW7Vv04r4gfao6uxjLGwfpGrZLarohiWCPnkNrg71S2CuNZSQBIPGjXfkmIy2tl_VWgGnL22GplyXj5Y"
        + "lBLdxXp3XeStsqo571utNfoUTU8E4qdzJ3U1DItoVkPGsMwlmmnJiwA7sXRItBCivR4M5qnZtdw-7v4WuR4779ubDuJ5nalMv2S66-RPcnFA"
        + "zWSKxtBDnFJJDGIUe7Tzizjg1nms0Xq_yPub_UOlWn0ec85FCft1hACpWG8schrOBeNqHBODFskYpUc2LC5JA2TaPF2dA67dg1TTsC_FupfQ"
        + "2kNGcE1LgprxKHcVWYQb86B-HozjHZcqtauBzFNV5tbTuB-TpkcvJfNcFLlH3b8mb-H_ox35FjqBSAjLKyoeqfKTpVjvXhd09knwgJf6VKq6"
        + "UC418_TOljMVfFTWXUxlnfhOOnzW6HSSzD1c9WrCuVzsUMv54szidQ9wf1cYWf3g5qFDxDQKis99gcDaiCAwM3yEBIzuNeeCa5dartHDb1xE"
        + "B_HcHSeYbghbMjGfasvKn0aZRsnTyC0xhWBlsolZE\","
        + "\"d\":\"n7fzJc3_WG59VEOBTkayzuSMM780OJQuZjN_KbH8lOZG25ZoA7T4Bxcc0xQn5oZE5uSCIwg91oCt0JvxPcpmqzaJZg1nirjcWZ-oB"
        + "tVk7gCAWq-B3qhfF3izlbkosrzjHajIcY33HBhsy4_WerrXg4MDNE4HYojy68TcxT2LYQRxUOCf5TtJXvM8olexlSGtVnQnDRutxEUCwiewf"
        + "mmrfveEogLx9EA-KMgAjTiISXxqIXQhWUQX1G7v_mV_Hr2YuImYcNcHkRvp9E7ook0876DhkO8v4UOZLwA1OlUX98mkoqwc58A_Y2lBYbVx1"
        + "_s5lpPsEqbbH-nqIjh1fL0gdNfihLxnclWtW7pCztLnImZAyeCWAG7ZIfv-Rn9fLIv9jZ6r7r-MSH9sqbuziHN2grGjD_jfRluMHa0l84fFK"
        + "l6bcqN1JWxPVhzNZo01yDF-1LiQnqUYSepPf6X3a2SOdkqBRiquE6EvLuSYIDpJq3jDIsgoL8Mo1LoomgiJxUwL_GWEOGu28gplyzm-9Q0U0"
        + "nyhEf1uhSR8aJAQWAiFImWH5W_IQT9I7-yrindr_2fWQ_i1UgMsGzA7aOGzZfPljRy6z-tY_KuBG00-28S_aWvjyUc-Alp8AUyKjBZ-7CWH3"
        + "2fGWK48j1t-zomrwjL_mnhsPbGs0c9WsWgRzI-K8gE\","
        + "\"p\":\"7_2v3OQZzlPFcHyYfLABQ3XP85Es4hCdwCkbDeltaUXgVy9l9etKghvM4hRkOvbb01kYVuLFmxIkCDtpi-zLCYAdXKrAK3PtSbtzld"
        + "_XZ9nlsYa_QZWpXB_IrtFjVfdKUdMz94pHUhFGFj7nr6NNxfpiHSHWFE1zD_AC3mY46J961Y2LRnreVwAGNw53p07Db8yD_92pDa97vqcZOdg"
        + "tybH9q6uma-RFNhO1AoiJhYZj69hjmMRXx-x56HO9cnXNbmzNSCFCKnQmn4GQLmRj9sfbZRqL94bbtE4_e0Zrpo8RNo8vxRLqQNwIy85fc6B"
        + "RgBJomt8QdQvIgPgWCv5HoQ\","
        + "\"q\":\"zqOHk1P6WN_rHuM7ZF1cXH0x6RuOHq67WuHiSknqQeefGBA9PWs6ZyKQCO-O6mKXtcgE8_Q_hA2kMRcKOcvHil1hqMCNSXlflM7WPR"
        + "PZu2qCDcqssd_uMbP-DqYthH_EzwL9KnYoH7JQFxxmcv5An8oXUtTwk4knKjkIYGRuUwfQTus0w1NfjFAyxOOiAQ37ussIcE6C6ZSsM3n41U"
        + "lbJ7TCqewzVJaPJN5cxjySPZPD3Vp01a9YgAD6a3IIaKJdIxJS1ImnfPevSJQBE79-EXe2kSwVgOzvt-gsmM29QQ8veHy4uAqca5dZzMs7hk"
        + "kHtw1z0jHV90epQJJlXXnH8Q\","
        + "\"dp\":\"19oDkBh1AXelMIxQFm2zZTqUhAzCIr4xNIGEPNoDt1jK83_FJA-xnx5kA7-1erdHdms_Ef67HsONNv5A60JaR7w8LHnDiBGnjdaUm"
        + "muO8XAxQJ_ia5mxjxNjS6E2yD44USo2JmHvzeeNczq25elqbTPLhUpGo1IZuG72FZQ5gTjXoTXC2-xtCDEUZfaUNh4IeAipfLugbpe0JAFlFf"
        + "rTDAMUFpC3iXjxqzbEanflwPvj6V9iDSgjj8SozSM0dLtxvu0LIeIQAeEgT_yXcrKGmpKdSO08kLBx8VUjkbv_3Pn20Gyu2YEuwpFlM_H1Nik"
        + "uxJNKFGmnAq9LcnwwT0jvoQ\","
        + "\"dq\":\"S6p59KrlmzGzaQYQM3o0XfHCGvfqHLYjCO557HYQf72O9kLMCfd_1VBEqeD-1jjwELKDjck8kOBl5UvohK1oDfSP1DleAy-cnmL29"
        + "DqWmhgwM1ip0CCNmkmsmDSlqkUXDi6sAaZuntyukyflI-qSQ3C_BafPyFaKrt1fgdyEwYa08pESKwwWisy7KnmoUvaJ3SaHmohFS78TJ25cf"
        + "c10wZ9hQNOrIChZlkiOdFCtxDqdmCqNacnhgE3bZQjGp3n83ODSz9zwJcSUvODlXBPc2AycH6Ci5yjbxt4Ppox_5pjm6xnQkiPgj01GpsUss"
        + "MmBN7iHVsrE7N2iznBNCeOUIQ\","
        + "\"qi\":\"FZhClBMywVVjnuUud-05qd5CYU0dK79akAgy9oX6RX6I3IIIPckCciRrokxglZn-omAY5CnCe4KdrnjFOT5YUZE7G_Pg44XgCXaarL"
        + "Qf4hl80oPEf6-jJ5Iy6wPRx7G2e8qLxnh9cOdf-kRqgOS3F48Ucvw3ma5V6KGMwQqWFeV31XtZ8l5cVI-I3NzBS7qltpUVgz2Ju021eyc7I"
        + "lqgzR98qKONl27DuEES0aK0WE97jnsyO27Yp88Wa2RiBrEocM89QZI1seJiGDizHRUP4UZxw9zsXww46wy0P6f9grnYp7t8LkyDDk8eoI4K"
        + "X6SNMNVcyVS9IWjlq8EzqZEKIA\"}";

    private const string R52Token =
        "eyJhbGciOiJSU0EtT0FFUCIsImtpZCI6InNhbXdpc2UuZ2FtZ2VlQGhvYmJpdG9uLmV4YW1wbGUiLCJlbmMiOiJBMjU2R0NNIn0."
        + "rT99rwrBTbTI7IJM8fU3Eli7226HEB7IchCxNuh7lCiud48LxeolRdtFF4nzQibeYOl5S_PJsAXZwSXtDePz9hk-BbtsTBqC2UsPOdwjC9Nh"
        + "NupNNu9uHIVftDyucvI6hvALeZ6OGnhNV4v1zx2k7O1D89mAzfw-_kT3tkuorpDU-CpBENfIHX1Q58-Aad3FzMuo3Fn9buEP2yXakLXYa15B"
        + "UXQsupM4A1GD4_H4Bd7V3u9h8Gkg8BpxKdUV9ScfJQTcYm6eJEBz3aSwIaK4T3-dwWpuBOhROQXBosJzS1asnuHtVMt2pKIIfux5BC6huIvm"
        + "Y7kzV7W7aIUrpYm_3H4zYvyMeq5pGqFmW2k8zpO878TRlZx7pZfPYDSXZyS0CfKKkMozT_qiCwZTSz4duYnt8hS4Z9sGthXn9uDqd6wycMag"
        + "nQfOTs_lycTWmY-aqWVDKhjYNRf03NiwRtb5BE-tOdFwCASQj3uuAgPGrO2AWBe38UjQb0lvXn1SpyvYZ3WFc7WOJYaTa7A8DRn6MC6T-xDm"
        + "MuxC0G7S2rscw5lQQU06MvZTlFOt0UvfuKBa03cxA_nIBIhLMjY2kOTxQMmpDPTr6Cbo8aKaOnx6ASE5Jx9paBpnNmOOKH35j_QlrQhDWUN6"
        + "A2Gg8iFayJ69xDEdHAVCGRzN3woEI2ozDRs.-nBoKLH0YkLZPSI9.o4k2cnGN8rSSw3IDo1YuySkqeS_t2m1GXklSgqBdpACm6UJuJowOHC5"
        + "ytjqYgRL-I-soPlwqMUf4UgRWWeaOGNw6vGW-xyM01lTYxrXfVzIIaRdhYtEMRBvBWbEwP7ua1DRfvaOjgZv6Ifa3brcAM64d8p5lhhNcizPe"
        + "rsuhw5f-pGYzseva-TUaL8iWnctc-sSwy7SQmRkfhDjwbz0fz6kFovEgj64X1I5s7E6GLp5fnbYGLa1QUiML7Cc2GxgvI7zqWo0YIEc7aCflL"
        + "G1-8BboVWFdZKLK9vNoycrYHumwzKluLWEbSVmaPpOslY2n525DxDfWaVFUfKQxMF56vn4B9QMpWAbnypNimbM8zVOw.UCGiqJxhBI3IFVdPal"
        + "HHvA";

    // 5.1 (RSA1_5) and 5.3 (PBES2): only the protected headers matter, they are refused before any key
    private const string R51Header =
        "eyJhbGciOiJSU0ExXzUiLCJraWQiOiJmcm9kby5iYWdnaW5zQGhvYmJpdG9uLmV4YW1wbGUiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0";

    private const string R51Token = R51Header
        + ".laLxI0j-nLH-_BgLOXMozKxmy9gffy2gTdvqzfTihJBuuzxg0V7yk1WClnQePFvG2K-pvSlWc9BRIazDrn50RcRai__3TDON395H3c62tIouJ"
        + "J4XaRvYHFjZTZ2GXfz8YAImcc91Tfk0WXC2F5Xbb71ClQ1DDH151tlpH77f2ff7xiSxh9oSewYrcGTSLUeeCt36r1Kt3OSj7EyBQXoZlN7Ix"
        + "byhMAfgIe7Mv1rOTOI5I8NQqeXXW8VlzNmoxaGMny3YnGir5Wf6Qt2nBq4qDaPdnaAuuGUGEecelIO1wx1BpyIfgvfjOhMBs9M8XL223Fg47"
        + "xlGsMXdfuY-4jaqVw.bbd5sTkYwhAIqfHsx8DayA.0fys_TY_na7f8dwSfXLiYdHaA2DxUjD67ieF7fcVbIR62JhJvGZ4_FNVSiGc_raa0HnL"
        + "Q6s1P2sv3Xzl1p1l_o5wR_RsSzrS8Z-wnI3Jvo0mkpEEnlDmZvDu_k8OWzJv7eZVEqiWKdyVzFhPpiyQU28GLOpRc2VbVbK4dQKPdNTjPPE"
        + "mRqcaGeTWZVyeSUvf5k59yJZxRuSvWFf6KrNtmRdZ8R4mDOjHSrM_s8uwIFcqt4r5GX8TKaI0zT5CbL5Qlw3sRc7u_hg0yKVOiRytEAEs3vZ"
        + "kcfLkP6nbXdC_PkMdNS-ohP78T2O6_7uInMGhFeX4ctHG7VelHGiT93JfWDEQi5_V9UN1rhXNrYu-0fVMkZAKX3VWi7lzA6BP430m.kvKuFB"
        + "XHe5mQr4lqgobAUg";

    private const string R53Token =
        "eyJhbGciOiJQQkVTMi1IUzUxMitBMjU2S1ciLCJwMnMiOiI4UTFTemluYXNSM3hjaFl6NlpaY0hBIiwicDJjIjo4MTkyLCJjdHkiOiJqd2st"
        + "c2V0K2pzb24iLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.d3qNhUWfqheyPp4H8sjOWsDYajoej4c5Je6rlUtFPWdgtURtmeDV1g.VBiCzVHNo"
        + "LiR3F4V82uoTQ.23i-Tb1AV4n0WKVSSgcQrdg6GRqsUKxjruHXYsTHAJLZ2nsnGIX86vMXqIi6IRsfywCRFzLxEcZBRnTvG3nhzPk0GDD7FM"
        + "yXhUHpDjEYCNA_XOmzg8yZR9oyjo6lTF6si4q9FZ2EhzgFQCLO_6h5EVg3vR75_hkBsnuoqoM3dwejXBtIodN84PeqMb6asmas_dpSsz7H10f"
        + "C5ni9xIz424givB1YLldF6exVmL93R3fOoOJbmk2GBQZL_SEGllv2cQsBgeprARsaQ7Bq99tT80coH8ItBjgV08AtzXFFsx9qKvC982KLKdPQ"
        + "MTlVJKkqtV4Ru5LEVpBZXBnZrtViSOgyg6AiuwaS-rCrcD_ePOGSuxvgtrokAKYPqmXUeRdjFJwafkYEkiuDCV9vWGAi1DH2xTafhJwcmywI"
        + "yzi4BqRpmdn_N-zl5tuJYyuvKhjKv6ihbsV_k1hJGPGAxJ6wUpmwC4PTQ2izEm0TuSE8oMKdTw8V3kobXZ77ulMwDs4p.0HlwodAhOCILG5SQ"
        + "2LQ9dg";

    private const string R54Jwk =
        "{\"kty\":\"EC\",\"kid\":\"peregrin.took@tuckborough.example\",\"use\":\"enc\",\"crv\":\"P-384\","
        + "\"x\":\"YU4rRUzdmVqmRtWOs2OpDE_T5fsNIodcG8G5FWPrTPMyxpzsSOGaQLpe2FpxBmu2\","
        + "\"y\":\"A8-yxCHxkfBz3hKZfI1jUYMjUhsEveZ9THuwFjH2sCNdtksRJU7D5-SkgaFL1ETP\","
        + "\"d\":\"iTx2pk7wW-GqJkHcEkFQb2EFyYcO7RugmaW3mRrQVAOUiPommT0IdnYK2xDlZh-j\"}";

    private const string R54Token =
        "eyJhbGciOiJFQ0RILUVTK0ExMjhLVyIsImtpZCI6InBlcmVncmluLnRvb2tAdHVja2Jvcm91Z2guZXhhbXBsZSIsImVwayI6eyJrdHkiOiJFQy"
        + "IsImNydiI6IlAtMzg0IiwieCI6InVCbzRrSFB3Nmtiang1bDB4b3dyZF9vWXpCbWF6LUdLRlp1NHhBRkZrYllpV2d1dEVLNml1RURzUTZ3TmR"
        + "OZzMiLCJ5Ijoic3AzcDVTR2haVkMyZmFYdW1JLWU5SlUyTW84S3BvWXJGRHI1eVBOVnRXNFBnRXdaT3lRVEEtSmRhWTh0YjdFMCJ9LCJlbmMi"
        + "OiJBMTI4R0NNIn0.0DJjBXri_kBcC46IkU5_Jk9BqaQeHdv2.mH-G2zVqgztUtnW_.tkZuOO9h95OgHJmkkrfLBisku8rGf6nzVxhRM3sVOhXg"
        + "z5NJ76oID7lpnAi_cPWJRCjSpAaUZ5dOR3Spy7QuEkmKx8-3RCMhSYMzsXaEwDdXta9Mn5B7cCBoJKB0IgEnj_qfo1hIi-uEkUpOZ8aLTZGHf"
        + "pl05jMwbKkTe2yK3mjF6SBAsgicQDVCkcY9BLluzx1RmC3ORXaM0JaHPB93YcdSDGgpgBWMVrNU1ErkjcMqMoT_wtCex3w03XdLkjXIuEr2hW"
        + "geP-nkUZTPU9EoGSPj6fAS-bSz87RCPrxZdj_iVyC6QWcqAu07WNhjzJEPc4jVntRJ6K53NgPQ5p99l3Z408OUqj4ioYezbS6vTPlQ.WuGzxm"
        + "creYjpHGJoa17EBg";

    private const string R55Jwk =
        "{\"kty\":\"EC\",\"kid\":\"meriadoc.brandybuck@buckland.example\",\"use\":\"enc\",\"crv\":\"P-256\","
        + "\"x\":\"Ze2loSV3wrroKUN_4zhwGhCqo3Xhu1td4QjeQ5wIVR0\",\"y\":\"HlLtdXARY_f55A3fnzQbPcm6hgr34Mp8p-nuzQCE0Zw\","
        + "\"d\":\"r_kHyZ-a06rmxM3yESK84r1otSg-aQcVStkRhA-iCM8\"}";

    private const string R55Token =
        "eyJhbGciOiJFQ0RILUVTIiwia2lkIjoibWVyaWFkb2MuYnJhbmR5YnVja0BidWNrbGFuZC5leGFtcGxlIiwiZXBrIjp7Imt0eSI6IkVDIiwiY3"
        + "J2IjoiUC0yNTYiLCJ4IjoibVBVS1RfYkFXR0hJaGcwVHBqanFWc1AxclhXUXVfdndWT0hIdE5rZFlvQSIsInkiOiI4QlFBc0ltR2VBUzQ2Zn"
        + "lXdzVNaFlmR1RUMElqQnBGdzJTUzM0RHY0SXJzIn0sImVuYyI6IkExMjhDQkMtSFMyNTYifQ..yc9N8v5sYyv3iGQT926IUg.BoDlwPnTypYq"
        + "-ivjmQvAYJLb5Q6l-F3LIgQomlz87yW4OPKbWE1zSTEFjDfhU9IPIOSA9Bml4m7iDFwA-1ZXvHteLDtw4R1XRGMEsDIqAYtskTTmzmzNa-_q4"
        + "F_evAPUmwlO-ZG45Mnq4uhM1fm_D9rBtWolqZSF3xGNNkpOMQKF1Cl8i8wjzRli7-IXgyirlKQsbhhqRzkv8IcY6aHl24j03C-AR2le1r7URU"
        + "hArM79BY8soZU0lzwI-sD5PZ3l4NDCCei9XkoIAfsXJWmySPoeRb2Ni5UZL4mYpvKDiwmyzGd65KqVw7MsFfI_K767G9C9Azp73gKZD0DyUn1"
        + "mn0WW5LmyX_yJ-3AROq8p1WZBfG-ZyJ6195_JGG2m9Csg.WCCkNa-x4BeB9hIDIfFuhg";

    private const string R56Jwk =
        "{\"kty\":\"oct\",\"kid\":\"77c7e2b8-6e13-45cf-8672-617b5b45243a\",\"use\":\"enc\",\"alg\":\"A128GCM\","
        + "\"k\":\"XctOhJAkA-pD9Lh7ZgW_2A\"}";

    private const string R56Token =
        "eyJhbGciOiJkaXIiLCJraWQiOiI3N2M3ZTJiOC02ZTEzLTQ1Y2YtODY3Mi02MTdiNWI0NTI0M2EiLCJlbmMiOiJBMTI4R0NNIn0..refa467Qzz"
        + "Kx6QAB.JW_i_f52hww_ELQPGaYyeAB6HYGcR559l9TYnSovc23XJoBcW29rHP8yZOZG7YhLpT1bjFuvZPjQS-m0IFtVcXkZXdH_lr_FrdYt9HR"
        + "UYkshtrMmIUAyGmUnd9zMDB2n0cRDIHAzFVeJUDxkUwVAE7_YGRPdcqMyiBoCO-FBdE-Nceb4h3-FtBP-c_BIwCPTjb9o0SbdcdREEMJMyZBH"
        + "8ySWMVi1gPD9yxi-aQpGbSv_F9N4IZAxscj5g-NJsUPbjk29-s7LJAGb15wEBtXphVCgyy53CoIKLHHeJHXex45Uz9aKZSRSInZI-wjsY0yu3"
        + "cT4_aQ3i1o-tiE-F8Ios61EKgyIQ4CWao8PFMj8TTnp.vbb32Xvllea2OtmHAdccRQ";

    private const string R57Jwk =
        "{\"kty\":\"oct\",\"kid\":\"18ec08e1-bfa9-4d95-b205-2b4dd1d4321d\",\"use\":\"enc\",\"alg\":\"A256GCMKW\","
        + "\"k\":\"qC57l_uxcm7Nm3K-ct4GFjx8tM1U8CZ0NLBvdQstiS8\"}";

    private const string R57Token =
        "eyJhbGciOiJBMjU2R0NNS1ciLCJraWQiOiIxOGVjMDhlMS1iZmE5LTRkOTUtYjIwNS0yYjRkZDFkNDMyMWQiLCJ0YWciOiJrZlBkdVZRM1QzSDZ"
        + "2bmV3dC0ta3N3IiwiaXYiOiJLa1lUMEdYXzJqSGxmcU5fIiwiZW5jIjoiQTEyOENCQy1IUzI1NiJ9.lJf3HbOApxMEBkCMOoTnnABxs_CvTWUm"
        + "ZQ2ElLvYNok.gz6NjyEFNm_vm8Gj6FwoFQ.Jf5p9-ZhJlJy_IQ_byKFmI0Ro7w7G1QiaZpI8OaiVgD8EqoDZHyFKFBupS8iaEeVIgMqWmsuJK"
        + "uoVgzR3YfzoMd3GxEm3VxNhzWyWtZKX0gxKdy6HgLvqoGNbZCzLjqcpDiF8q2_62EVAbr2uSc2oaxFmFuIQHLcqAHxy51449xkjZ7ewzZaGV3"
        + "eFqhpco8o4DijXaG5_7kp3h2cajRfDgymuxUbWgLqaeNQaJtvJmSMFuEOSAzw9Hdeb6yhdTynCRmu-kqtO5Dec4lT2OMZKpnxc_F1_4yDJFcq"
        + "b5CiDSmA-psB2k0JtjxAj4UPI61oONK7zzFIu4gBfjJCndsZfdvG7h8wGjV98QhrKEnR7xKZ3KCr0_qR1B-gxpNk3xWU.DKW7jrb4WaRSNfbXV"
        + "PlT5g";

    private const string R58Jwk =
        "{\"kty\":\"oct\",\"kid\":\"81b20965-8332-43d9-a468-82160ad91ac8\",\"use\":\"enc\",\"alg\":\"A128KW\","
        + "\"k\":\"GZy6sIZ6wl9NJOKB-jnmVQ\"}";

    private const string R58Token =
        "eyJhbGciOiJBMTI4S1ciLCJraWQiOiI4MWIyMDk2NS04MzMyLTQzZDktYTQ2OC04MjE2MGFkOTFhYzgiLCJlbmMiOiJBMTI4R0NNIn0.CBI6oD"
        + "w8MydIx1IBntf_lQcw2MmJKIQx.Qx0pmsDa8KnJc9Jo.AwliP-KmWgsZ37BvzCefNen6VTbRK3QMA4TkvRkH0tP1bTdhtFJgJxeVmJkLD61A1hn"
        + "WGetdg11c9ADsnWgL56NyxwSYjU1ZEHcGkd3EkU0vjHi9gTlb90qSYFfeF0LwkcTtjbYKCsiNJQkcIp1yeM03OmuiYSoYJVSpf7ej6zaYcMv3W"
        + "wdxDFl8REwOhNImk2Xld2JXq6BR53TSFkyT7PwVLuq-1GwtGHlQeg7gDT6xW0JqHDPn_H-puQsmthc9Zg0ojmJfqqFvETUxLAF-KjcBTS5dNy"
        + "6egwkYtOt8EIHK-oEsKYtZRaa8Z7MOZ7UGxGIMvEmxrGCPeJa14slv2-gaqK0kEThkaSqdYw0FkQZF.ER7MWJZ1FBI_NKvn7Zb1Lw";

    private const string R59Token =
        "eyJhbGciOiJBMTI4S1ciLCJraWQiOiI4MWIyMDk2NS04MzMyLTQzZDktYTQ2OC04MjE2MGFkOTFhYzgiLCJlbmMiOiJBMTI4R0NNIiwiemlwI"
        + "joiREVGIn0.5vUT2WOtQxKWcekM_IzVQwkGgzlFDwPi.p9pUq6XHY0jfEZIl.HbDtOsdai1oYziSx25KEeTxmwnh8L8jKMFNc1k3zmMI6VB8hr"
        + "y57tDZ61jXyezSPt0fdLVfe6Jf5y5-JaCap_JQBcb5opbmT60uWGml8blyiMQmOn9J--XhhlYg0m-BHaqfDO5iTOWxPxFMUedx7WCy8mxgDHj"
        + "0aBMG6152PsM-w5E_o2B3jDbrYBKhpYA7qi3AyijnCJ7BP9rr3U8kxExCpG3mK420TjOw.VILuUwuIxaLVmh5X-T7kmA";

    private static string Set(params string[] jwks) => "{\"keys\":[" + string.Join(",", jwks) + "]}";

    internal static DecryptResult Decrypt(string token, KeySet keys, out string plaintext)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(token);
        byte[] output = new byte[bytes.Length];
        DecryptResult result = JweDecryptor.Decrypt(bytes, [keys], ReadOnlySpan<KeySet>.Empty, output);
        plaintext = result.PlaintextLength < 0 ? ""
            : Encoding.UTF8.GetString(output, result.HeaderLength, result.PlaintextLength);
        return result;
    }

    private static IEnumerable<TestCaseData> Decryptable()
    {
        yield return new TestCaseData(A1Jwk, A1Token, "The true sign of intelligence is not knowledge but imagination.")
            .SetName("RFC_7516_A1_RSA_OAEP_A256GCM_decrypts_with_a_key_of_n_e_d_only");
        yield return new TestCaseData(A3Jwk, A3Token, "Live long and prosper.")
            .SetName("RFC_7516_A3_A128KW_A128CBC_HS256_decrypts");
        yield return new TestCaseData(R52Jwk, R52Token, Fellowship).SetName("RFC_7520_5_2_RSA_OAEP_A256GCM_decrypts");
        yield return new TestCaseData(R54Jwk, R54Token, Fellowship).SetName("RFC_7520_5_4_ECDH_ES_A128KW_A128GCM_decrypts");
        yield return new TestCaseData(R55Jwk, R55Token, Fellowship).SetName("RFC_7520_5_5_ECDH_ES_A128CBC_HS256_decrypts");
        yield return new TestCaseData(R56Jwk, R56Token, Fellowship).SetName("RFC_7520_5_6_dir_A128GCM_decrypts");
        yield return new TestCaseData(R57Jwk, R57Token, Fellowship).SetName("RFC_7520_5_7_A256GCMKW_A128CBC_HS256_decrypts");
        yield return new TestCaseData(R58Jwk, R58Token, Fellowship).SetName("RFC_7520_5_8_A128KW_A128GCM_decrypts");
    }

    [TestCaseSource(nameof(Decryptable))]
    public void Vector_decrypts(string jwk, string token, string expected)
    {
        using KeySet keys = T.Keys(Set(jwk));
        DecryptResult result = Decrypt(token, keys, out string plaintext);
        Assert.That(result.Error, Is.EqualTo(TokenError.None));
        Assert.That(plaintext, Is.EqualTo(expected));
    }

    [TestCaseSource(nameof(Decryptable))]
    public void Vector_with_a_flipped_tag_bit_fails_as_decrypt_failed(string jwk, string token, string expected)
    {
        using KeySet keys = T.Keys(Set(jwk));
        Assert.That(Decrypt(FlipInPart(token, 4), keys, out _).Error, Is.EqualTo(TokenError.DecryptFailed));
    }

    [TestCaseSource(nameof(Decryptable))]
    public void Vector_with_a_flipped_ciphertext_bit_fails_as_decrypt_failed(string jwk, string token, string expected)
    {
        using KeySet keys = T.Keys(Set(jwk));
        Assert.That(Decrypt(FlipInPart(token, 3), keys, out _).Error, Is.EqualTo(TokenError.DecryptFailed));
    }

    [Test]
    public void RSA_OAEP_with_a_tampered_encrypted_key_fails_like_a_wrong_tag()
    {
        using KeySet keys = T.Keys(Set(R52Jwk));
        Assert.That(Decrypt(FlipInPart(R52Token, 1), keys, out _).Error, Is.EqualTo(TokenError.DecryptFailed));
    }

    [Test]
    public void A128KW_with_a_tampered_encrypted_key_fails_as_decrypt_failed()
    {
        using KeySet keys = T.Keys(Set(R58Jwk));
        Assert.That(Decrypt(FlipInPart(R58Token, 1), keys, out _).Error, Is.EqualTo(TokenError.DecryptFailed));
    }

    [Test]
    public void A_wrong_RSA_key_fails_as_decrypt_failed()
    {
        // the A.1 key has no kid: it is a candidate for the kid-less pass
        using KeySet keys = T.Keys(Set(A1Jwk));
        Assert.That(Decrypt(R52Token, keys, out _).Error, Is.EqualTo(TokenError.DecryptFailed));
    }

    [Test]
    public void RFC_7516_A2_RSA1_5_is_refused_before_any_key_is_used()
    {
        using KeySet keys = T.Keys(Set(A1Jwk));
        DecryptResult result = Decrypt(A2Token, keys, out _);
        Assert.That(result.Error, Is.EqualTo(TokenError.AlgUnsupported));
        Assert.That(result.HeaderLength, Is.GreaterThan(0), "the header decoded, for the log");
    }

    [Test]
    public void RFC_7520_5_1_RSA1_5_is_refused()
    {
        using KeySet keys = T.Keys(Set(R52Jwk));
        Assert.That(Decrypt(R51Token, keys, out _).Error, Is.EqualTo(TokenError.AlgUnsupported));
    }

    [Test]
    public void RFC_7520_5_3_PBES2_is_refused()
    {
        using KeySet keys = T.Keys(Set(R58Jwk));
        Assert.That(Decrypt(R53Token, keys, out _).Error, Is.EqualTo(TokenError.AlgUnsupported));
    }

    [Test]
    public void RFC_7520_5_9_compressed_content_is_refused()
    {
        using KeySet keys = T.Keys(Set(R58Jwk));
        Assert.That(Decrypt(R59Token, keys, out _).Error, Is.EqualTo(TokenError.ZipUnsupported));
    }

    [Test]
    public void A_key_of_the_wrong_kind_is_not_a_candidate()
    {
        using KeySet keys = T.Keys(Set(R58Jwk)); // an A128KW key for an RSA-OAEP token
        Assert.That(Decrypt(R52Token, keys, out _).Error, Is.EqualTo(TokenError.KeyNotFound));
    }

    [Test]
    public void A_set_without_decryption_keys_is_no_keys()
    {
        using KeySet keys = T.Keys(Set(T.OctJwk(T.HmacSecret).Replace("\"kty\"", "\"use\":\"sig\",\"kty\"")));
        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(Decrypt(R58Token, keys, out _).Error, Is.EqualTo(TokenError.NoKeys));
    }

    [Test]
    public void An_ECDH_key_on_another_curve_than_epk_is_not_a_candidate()
    {
        using KeySet keys = T.Keys(Set(R55Jwk.Replace("meriadoc.brandybuck@buckland.example", "peregrin.took@tuckborough.example")));
        Assert.That(Decrypt(R54Token, keys, out _).Error, Is.EqualTo(TokenError.KeyNotFound));
    }

    [Test]
    public void A_JWS_is_not_a_JWE()
    {
        using KeySet keys = T.Keys(Set(R58Jwk));
        Assert.That(Decrypt("eyJhbGciOiJIUzI1NiJ9.e30.c2ln", keys, out _).Error, Is.EqualTo(TokenError.TokenMalformed));
    }

    [Test]
    public void Private_keys_of_a_JWK_set_also_load_their_public_half_for_signatures()
    {
        using KeySet keys = T.Keys(Set(A1Jwk.Replace("\"use\":\"enc\",", "")));
        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(1));
    }

    [Test]
    public void An_unmarked_private_key_JWE_cannot_use_still_loads_for_signatures()
    {
        using var k1 = System.Security.Cryptography.ECDsa.Create(
            System.Security.Cryptography.ECCurve.CreateFromValue("1.3.132.0.10"));
        var p = k1.ExportParameters(true);
        string jwk = "{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"" + T.B64(p.Q.X!) + "\",\"y\":\""
            + T.B64(p.Q.Y!) + "\",\"d\":\"" + T.B64(p.D!) + "\"}";
        using KeySet keys = T.Keys(Set(jwk));
        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(keys.DecryptionKeys.Length, Is.Zero);
    }

    [Test]
    public void A_set_whose_only_key_is_marked_for_encryption_and_unusable_fails()
    {
        KeySetResult result = KeySetLoader.Load(T.U(Set("{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"!!\"}")),
            KeySetFormat.Jwks);
        Assert.That(result.Error, Is.EqualTo(ConfigError.KeyBadParameter));
        Assert.That(result.Detail, Is.Zero);
    }

    // ---- decryption keys beside skipped signing keys ----------------------

    private static string PrivateRsaJwk(RSA rsa, string kid, string? use = "enc")
    {
        RSAParameters p = rsa.ExportParameters(true);
        return "{\"kty\":\"RSA\",\"kid\":\"" + kid + "\"" + (use is null ? "" : ",\"use\":\"" + use + "\"")
            + ",\"n\":\"" + T.B64(p.Modulus!) + "\",\"e\":\"" + T.B64(p.Exponent!) + "\",\"d\":\"" + T.B64(p.D!) + "\"}";
    }

    [Test]
    public void A_set_of_decryption_keys_only_loads_and_reports_nothing()
    {
        using RSA rsa = RSA.Create(2048);
        KeySetResult result = KeySetLoader.Load(T.U(Set(PrivateRsaJwk(rsa, "enc-rsa"), R58Jwk)), KeySetFormat.Jwks);

        Assert.That(result.Error, Is.EqualTo(ConfigError.None));
        using KeySet keys = result.KeySet!;
        Assert.That(keys.Count, Is.Zero, "nothing verifies");
        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(2));
        Assert.That(keys.Skipped, Is.Empty, "keys in use are not skipped keys");
        Assert.That(Decrypt(R58Token, keys, out _).Error, Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Skipped_signing_keys_do_not_drop_the_decryption_keys_of_the_set()
    {
        using RSA rsa = RSA.Create(2048);
        using RSA small = RSA.Create(1024);
        KeySetResult result = KeySetLoader.Load(T.U(Set(
            T.OctJwk(new byte[12], "short", "HS256"),
            T.RsaJwk(small, "rsa1024"),
            T.RsaJwk(rsa, "enc-public", use: "enc"),
            PrivateRsaJwk(rsa, "enc-rsa"),
            R58Jwk)), KeySetFormat.Jwks);

        Assert.That(result.Error, Is.EqualTo(ConfigError.None));
        using KeySet keys = result.KeySet!;
        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(2));
        Assert.That(keys.Skipped, Has.Count.EqualTo(3));
        Assert.That(keys.Skipped[0].Reason, Is.EqualTo(ConfigError.KeyHmacTooShort));
        Assert.That(keys.Skipped[1].Reason, Is.EqualTo(ConfigError.KeyRsaTooSmall));
        Assert.That(keys.Skipped[2], Is.EqualTo(keys.Skipped[2] with { Index = 2, Reason = ConfigError.KeyForEncryption }),
            "a public encryption key decrypts nothing");
        Assert.That(Decrypt(R58Token, keys, out _).Error, Is.EqualTo(TokenError.None));
    }

    [TestCase("{\"kty\":\"oct\",\"kid\":\"k\",\"use\":\"enc\",\"k\":\"GZy6sIZ6wl9NJOKB-jnmVQ\"}", TestName = "A_16_byte_oct_key_with_use_enc_is_a_decryption_key_not_a_weak_HMAC_key")]
    [TestCase("{\"kty\":\"oct\",\"kid\":\"k\",\"alg\":\"A128KW\",\"k\":\"GZy6sIZ6wl9NJOKB-jnmVQ\"}", TestName = "A_16_byte_oct_key_with_a_JWE_alg_is_a_decryption_key_not_a_weak_HMAC_key")]
    public void Short_oct_key_marked_for_encryption_is_not_skipped(string jwk)
    {
        using KeySet keys = T.Keys(Set(jwk, T.OctJwk(T.HmacSecret, "hmac", "HS256")));

        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(1));
        Assert.That(keys.Skipped, Is.Empty);
    }

    [Test]
    public void A_short_oct_key_without_a_mark_is_a_weak_HMAC_key_that_decrypts_nothing()
    {
        using KeySet keys = T.Keys(Set("{\"kty\":\"oct\",\"kid\":\"k\",\"k\":\"GZy6sIZ6wl9NJOKB-jnmVQ\"}",
            T.OctJwk(T.HmacSecret, "hmac", "HS256")));

        Assert.That(keys.DecryptionKeys.Length, Is.Zero, "a key is used or reported, never both");
        Assert.That(keys.Skipped, Has.Count.EqualTo(1));
        Assert.That(keys.Skipped[0].Reason, Is.EqualTo(ConfigError.KeyHmacTooShort));
    }

    [Test]
    public void An_oct_key_of_32_bytes_without_a_mark_verifies_and_decrypts()
    {
        using KeySet keys = T.Keys(Set(T.OctJwk(new byte[32], "both")));

        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(1));
    }

    [TestCase("{\"kty\":\"oct\",\"kid\":\"k\",\"use\":\"enc\",\"k\":\"AAAAAAAAAAAAAAAA\"}", ConfigError.KeyBadParameter, TestName = "A_12_byte_oct_key_marked_for_encryption_is_skipped_as_unusable_not_as_weak_HMAC")]
    [TestCase("{\"kty\":\"oct\",\"kid\":\"k\",\"alg\":\"A256KW\",\"k\":\"GZy6sIZ6wl9NJOKB-jnmVQ\"}", ConfigError.KeyBadParameter, TestName = "An_A256KW_key_of_16_bytes_is_skipped_as_unusable")]
    [TestCase("{\"kty\":\"RSA\",\"kid\":\"k\",\"alg\":\"RSA-OAEP\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", ConfigError.KeyForEncryption, TestName = "A_public_RSA_OAEP_key_is_skipped_as_an_encryption_key")]
    public void Key_marked_for_encryption_that_cannot_decrypt_is_skipped_for_that_reason(string jwk, ConfigError reason)
    {
        using KeySet keys = T.Keys(Set(jwk, T.OctJwk(T.HmacSecret, "hmac", "HS256")));

        Assert.That(keys.DecryptionKeys.Length, Is.Zero);
        Assert.That(keys.Skipped, Has.Count.EqualTo(1));
        Assert.That(keys.Skipped[0].Reason, Is.EqualTo(reason));
    }

    [Test]
    public void A_marked_RSA_key_under_2048_bits_is_skipped_as_too_small()
    {
        using RSA small = RSA.Create(1024);
        using KeySet keys = T.Keys(Set(PrivateRsaJwk(small, "small"), R58Jwk));

        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(1));
        Assert.That(keys.Skipped, Has.Count.EqualTo(1));
        Assert.That(keys.Skipped[0].Reason, Is.EqualTo(ConfigError.KeyRsaTooSmall));
    }

    [Test]
    public void A_JWE_for_a_skipped_decryption_key_says_why()
    {
        using RSA small = RSA.Create(1024);
        using KeySet keys = T.Keys(Set(PrivateRsaJwk(small, "small"), R58Jwk));
        string token = T.B64("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\",\"kid\":\"small\"}") + "."
            + T.B64(new byte[128]) + "." + T.B64(new byte[12]) + "." + T.B64(new byte[8]) + "." + T.B64(new byte[16]);

        DecryptResult result = Decrypt(token, keys, out _);

        Assert.That(result.Error, Is.EqualTo(TokenError.KeySkipped));
        Assert.That(result.Detail, Is.EqualTo((int)ConfigError.KeyRsaTooSmall));
    }

    [Test]
    public void A_JWE_for_a_public_encryption_key_finds_no_key()
    {
        using RSA rsa = RSA.Create(2048);
        using KeySet keys = T.Keys(Set(T.RsaJwk(rsa, "public", use: "enc"), R58Jwk));
        string token = T.B64("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\",\"kid\":\"public\"}") + "."
            + T.B64(new byte[256]) + "." + T.B64(new byte[12]) + "." + T.B64(new byte[8]) + "." + T.B64(new byte[16]);

        Assert.That(Decrypt(token, keys, out _).Error, Is.EqualTo(TokenError.KeyNotFound));
    }

    [Test]
    public void Keyval_private_keys_load_beside_skipped_entries()
    {
        using RSA rsa = RSA.Create(2048);
        using ECDsa k1 = ECDsa.Create(ECCurve.CreateFromValue("1.3.132.0.10"));
        string doc = "{\"enc\":" + System.Text.Json.JsonSerializer.Serialize(rsa.ExportPkcs8PrivateKeyPem(), JsonContext.Default.String)
            + ",\"k1\":" + System.Text.Json.JsonSerializer.Serialize(k1.ExportPkcs8PrivateKeyPem(), JsonContext.Default.String)
            + ",\"bad\":\"not a pem\"}";

        using KeySet keys = T.Keys(doc, KeySetFormat.KeyVal);

        Assert.That(keys.Count, Is.Zero);
        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(1));
        Assert.That(keys.Skipped, Has.Count.EqualTo(2));
        Assert.That(keys.Skipped[0], Is.EqualTo(keys.Skipped[0] with { Index = 1, Reason = ConfigError.KeyBadPem }));
        Assert.That(keys.Skipped[1], Is.EqualTo(keys.Skipped[1] with { Index = 2, Reason = ConfigError.KeyBadPem }));
    }

    // ---- RFC 7518 appendix B: AES_CBC_HMAC_SHA2 ------------------------

    private const string BPlaintext = "A cipher system must not be required to be secret, and it must be able to "
        + "fall into the hands of the enemy without inconvenience";

    private const string BAad = "The second principle of Auguste Kerckhoffs";

    private const string BIv = "1af38c2dc2b96ffdd86694092341bc04";

    [TestCase(JweEncryption.A128CbcHs256, 32,
        "c80edfa32ddf39d5ef00c0b468834279a2e46a1b8049f792f76bfe54b903a9c9a94ac9b47ad2655c5f10f9aef71427e2fc6f9b3f399a"
        + "221489f16362c703233609d45ac69864e3321cf82935ac4096c86e133314c54019e8ca7980dfa4b9cf1b384c486f3a54c51078158ee5"
        + "d79de59fbd34d848b3d69550a67646344427ade54b8851ffb598f7f80074b9473c82e2db",
        "652c3fa36b0a7c5b3219fab3a30bc1c4", TestName = "RFC_7518_B1_AES_128_CBC_HMAC_SHA_256_decrypts")]
    [TestCase(JweEncryption.A192CbcHs384, 48,
        "ea65da6b59e61edb419be62d19712ae5d303eeb50052d0dfd6697f77224c8edb000d279bdc14c1072654bd30944230c657bed4ca0c9f"
        + "4a8466f22b226d1746214bf8cfc2400add9f5126e479663fc90b3bed787a2f0ffcbf3904be2a641d5c2105bfe591bae23b1d7449e532"
        + "eef60a9ac8bb6c6b01d35d49787bcd57ef484927f280adc91ac0c4e79c7b11efc60054e3",
        "8490ac0e58949bfe51875d733f93ac2075168039ccc733d7", TestName = "RFC_7518_B2_AES_192_CBC_HMAC_SHA_384_decrypts")]
    [TestCase(JweEncryption.A256CbcHs512, 64,
        "4affaaadb78c31c5da4b1b590d10ffbd3dd8d5d302423526912da037ecbcc7bd822c301dd67c373bccb584ad3e9279c2e6d12a1374b7"
        + "7f077553df829410446b36ebd97066296ae6427ea75c2e0846a11a09ccf5370dc80bfecbad28c73f09b3a3b75e662a2594410ae496b2"
        + "e2e6609e31e6e02cc837f053d21f37ff4f51950bbe2638d09dd7a4930930806d0703b1f6",
        "4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5",
        TestName = "RFC_7518_B3_AES_256_CBC_HMAC_SHA_512_decrypts")]
    public void Cbc_hmac_vector(JweEncryption enc, int keyLength, string ciphertextHex, string tagHex)
    {
        byte[] key = new byte[keyLength];
        for (int i = 0; i < key.Length; i++)
        {
            key[i] = (byte)i;
        }
        byte[] ciphertext = Convert.FromHexString(ciphertextHex);
        byte[] tag = Convert.FromHexString(tagHex);
        byte[] plaintext = new byte[ciphertext.Length];
        int length = JweDecryptor.DecryptContent(enc, key, Convert.FromHexString(BIv), ciphertext, tag,
            Encoding.ASCII.GetBytes(BAad), plaintext);
        Assert.That(length, Is.GreaterThanOrEqualTo(0));
        Assert.That(Encoding.ASCII.GetString(plaintext, 0, length), Is.EqualTo(BPlaintext));

        tag[^1] ^= 1;
        Assert.That(JweDecryptor.DecryptContent(enc, key, Convert.FromHexString(BIv), ciphertext, tag,
            Encoding.ASCII.GetBytes(BAad), plaintext), Is.EqualTo(-1));
    }

    // ---- RFC 3394 section 4.1 ------------------------------------------

    [Test]
    public void RFC_3394_4_1_unwraps_128_bits_with_a_128_bit_kek()
    {
        byte[] kek = Convert.FromHexString("000102030405060708090A0B0C0D0E0F");
        byte[] wrapped = Convert.FromHexString("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5");
        byte[] key = new byte[16];
        Assert.That(AesKeyWrap.Unwrap(kek, wrapped, key), Is.True);
        Assert.That(Convert.ToHexString(key), Is.EqualTo("00112233445566778899AABBCCDDEEFF"));
        Assert.That(Convert.ToHexString(AesKeyWrap.Wrap(kek, key)), Is.EqualTo(Convert.ToHexString(wrapped)));

        wrapped[5] ^= 1;
        Assert.That(AesKeyWrap.Unwrap(kek, wrapped, key), Is.False);
    }

    internal static string FlipInPart(string token, int part)
    {
        string[] parts = token.Split('.');
        byte[] bytes = Base64Url.DecodeFromChars(parts[part]);
        bytes[bytes.Length / 2] ^= 0x01;
        parts[part] = Base64Url.EncodeToString(bytes);
        return string.Join(".", parts);
    }
}
