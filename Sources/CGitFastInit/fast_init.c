// repro links Debian's static libgit2 (see Package.swift) and only ever opens local
// repositories. Two things libgit2 would otherwise do are replaced here:
//
// - git_libgit2_init() parses the whole system CA bundle through mbedTLS
//   (/etc/ssl/certs/ca-certificates.crt): ~3.5 ms of every repro process. The linker's
//   --wrap=mbedtls_x509_crt_parse_file sends libgit2's call here, and nothing is loaded. Should
//   libgit2 ever be asked to fetch over HTTPS, certificate verification fails closed: there are
//   no trusted roots.
// - libgit2's HTTP "Negotiate" authentication calls GSS-API (Kerberos). Linking the real one
//   would load six Kerberos libraries at every start; these definitions answer GSS_S_FAILURE,
//   so such an authentication fails closed too.
// - git_libgit2_init() sets up an mbedTLS entropy pool (whose HAVEGE source runs CPU-cycle
//   timing loops when it is initialized: ~0.15 ms of every process) and seeds a random
//   generator from it. --wrap sends both calls here: the pool is left empty (zeroed, so freeing
//   it is harmless; nothing else draws from it) and the generator is seeded from the kernel's
//   CSPRNG (getrandom), the source mbedTLS itself ranks strongest.
// - git_libgit2_init() also initializes libssh2, which registers OpenSSL's algorithm names
//   (~0.08 ms). The wrapped call does nothing: libssh2 initializes itself (through its own
//   internal call, which --wrap does not touch) when an SSH session is ever opened.
//
// repro's own HTTP goes through libcurl with the system's OpenSSL, which this does not touch.
#include "fast_init.h"
#include <stddef.h>

#ifdef __linux__
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <mbedtls/entropy.h>

int __wrap_mbedtls_x509_crt_parse_file(void *chain, const char *path) {
    (void)chain;
    (void)path;
    return 0;
}

// MBEDTLS_ERR_ENTROPY_SOURCE_FAILED
#define REPRO_ENTROPY_SOURCE_FAILED (-0x003C)

static int repro_os_entropy(void *unused, unsigned char *out, size_t n) {
    (void)unused;
    while (n > 0) {
        ssize_t got = getrandom(out, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return REPRO_ENTROPY_SOURCE_FAILED;
        }
        out += got;
        n -= (size_t)got;
    }
    return 0;
}

int __wrap_libssh2_init(int flags) {
    (void)flags;
    return 0;
}

void __wrap_mbedtls_entropy_init(mbedtls_entropy_context *ctx) {
    memset(ctx, 0, sizeof(*ctx));
}

int __real_mbedtls_ctr_drbg_seed(void *ctx, int (*f_entropy)(void *, unsigned char *, size_t), void *p_entropy,
                                 const unsigned char *custom, size_t len);

int __wrap_mbedtls_ctr_drbg_seed(void *ctx, int (*f_entropy)(void *, unsigned char *, size_t), void *p_entropy,
                                 const unsigned char *custom, size_t len) {
    (void)f_entropy;
    (void)p_entropy;
    return __real_mbedtls_ctr_drbg_seed(ctx, repro_os_entropy, NULL, custom, len);
}

typedef unsigned int OM_uint32;
// GSS_S_FAILURE: a routine error code of 13 in the routine-error field (RFC 2744, 3.9.1).
#define REPRO_GSS_S_FAILURE (13u << 16)
void *GSS_C_NT_HOSTBASED_SERVICE = NULL;
#define REPRO_GSS_FAILS(name) \
    OM_uint32 name(OM_uint32 *minor, ...) { if (minor) *minor = 0; return REPRO_GSS_S_FAILURE; }
REPRO_GSS_FAILS(gss_delete_sec_context)
REPRO_GSS_FAILS(gss_display_status)
REPRO_GSS_FAILS(gss_import_name)
REPRO_GSS_FAILS(gss_indicate_mechs)
REPRO_GSS_FAILS(gss_init_sec_context)
REPRO_GSS_FAILS(gss_release_buffer)
REPRO_GSS_FAILS(gss_release_name)
REPRO_GSS_FAILS(gss_release_oid_set)
#endif

int repro_git_fast_init_linked(void) { return 1; }
