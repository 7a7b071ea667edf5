// Debian's libgit2 is built with mbedTLS, and git_libgit2_init() parses the whole system CA
// bundle (/etc/ssl/certs/ca-certificates.crt) into memory: ~4 ms of every repro process, a
// third of a cache hit. repro only reads local repositories and never uses libgit2's HTTPS
// transport, so this definition takes the place of mbedTLS's loader for libgit2 (the
// executable's symbols win dynamic symbol lookup) and loads nothing. Should libgit2 ever be
// asked to fetch over HTTPS, certificate verification fails closed: there are no trusted roots.
// repro's own HTTP goes through libcurl with OpenSSL, which this does not touch.
#include "fast_init.h"

int mbedtls_x509_crt_parse_file(void *chain, const char *path) {
    (void)chain;
    (void)path;
    return 0;
}

int repro_git_fast_init_linked(void) { return 1; }
