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
//
// repro's own HTTP goes through libcurl with the system's OpenSSL, which this does not touch.
#include "fast_init.h"
#include <stddef.h>

#ifdef __linux__
int __wrap_mbedtls_x509_crt_parse_file(void *chain, const char *path) {
    (void)chain;
    (void)path;
    return 0;
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
