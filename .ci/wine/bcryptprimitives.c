/* A stand-in for Windows's bcryptprimitives.dll, for running the Windows
 * build under wine 8 (Debian 12), which lacks it. Rust's standard library
 * (since 1.78) gets its randomness from ProcessPrng in that DLL; wine has
 * ProcessPrng only from 9.0. This one asks advapi32's RtlGenRandom
 * (SystemFunction036), which wine 8 has. Test use only: a real Windows
 * has the DLL. Built by .ci/wine-check. */
#include <windows.h>
#include <ntsecapi.h>

/* RtlGenRandom takes a 32-bit length; ask for at most 2^28 bytes a time. */
#define CHUNK ((SIZE_T)1 << 28)

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG part = (ULONG)(length < CHUNK ? length : CHUNK);
        if (!RtlGenRandom(data, part))
            return FALSE;
        data += part;
        length -= part;
    }
    return TRUE;
}
