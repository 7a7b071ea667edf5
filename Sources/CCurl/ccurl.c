#include "ccurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} f;
static int loaded = -1;
static char load_error[512] = "libcurl was not loaded";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    // The runtime library of libcurl4-openssl-dev (libcurl4 on Debian 12).
    const char *names[] = {"libcurl.so.4", "libcurl.so", "libcurl-gnutls.so.4"};
    void *lib = NULL;
    for (unsigned i = 0; i < sizeof names / sizeof *names && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load libcurl (%s); install libcurl4 (apt-get install libcurl4)", dlerror());
        return;
    }
#define SYM(field, name)                                                                          \
    if (!(*(void **)&f.field = dlsym(lib, name))) {                                               \
        snprintf(load_error, sizeof load_error, "libcurl has no %s; it is too old for repro", name); \
        return;                                                                                   \
    }
    SYM(global_init, "curl_global_init")
    SYM(easy_init, "curl_easy_init")
    SYM(easy_cleanup, "curl_easy_cleanup")
    SYM(easy_reset, "curl_easy_reset")
    SYM(easy_perform, "curl_easy_perform")
    SYM(easy_strerror, "curl_easy_strerror")
    SYM(easy_setopt, "curl_easy_setopt")
    SYM(easy_getinfo, "curl_easy_getinfo")
    SYM(slist_append, "curl_slist_append")
    SYM(slist_free_all, "curl_slist_free_all")
#undef SYM
    if (f.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        return;
    }
    loaded = 0;
}

int repro_curl_load(void) {
    pthread_once(&once, load);
    return loaded;
}
const char *repro_curl_load_error(void) { return load_error; }

// Callers load first (HTTPClient does, once); these assume a loaded library.
CURL *repro_curl_easy_init(void) { return repro_curl_load() == 0 ? f.easy_init() : NULL; }
void repro_curl_easy_cleanup(CURL *h) { f.easy_cleanup(h); }
void repro_curl_easy_reset(CURL *h) { f.easy_reset(h); }
CURLcode repro_curl_easy_perform(CURL *h) { return f.easy_perform(h); }
const char *repro_curl_easy_strerror(CURLcode code) { return f.easy_strerror(code); }
struct curl_slist *repro_curl_slist_append(struct curl_slist *list, const char *line) {
    return repro_curl_load() == 0 ? f.slist_append(list, line) : list;
}
void repro_curl_slist_free_all(struct curl_slist *list) {
    if (list) f.slist_free_all(list);
}
CURLcode repro_curl_set_long(CURL *h, CURLoption opt, long value) { return f.easy_setopt(h, opt, value); }
CURLcode repro_curl_set_off(CURL *h, CURLoption opt, long long value) { return f.easy_setopt(h, opt, (curl_off_t)value); }
CURLcode repro_curl_set_str(CURL *h, CURLoption opt, const char *value) { return f.easy_setopt(h, opt, value); }
CURLcode repro_curl_set_ptr(CURL *h, CURLoption opt, void *value) { return f.easy_setopt(h, opt, value); }
CURLcode repro_curl_set_fn(CURL *h, CURLoption opt, repro_curl_io_fn fn) { return f.easy_setopt(h, opt, fn); }
long repro_curl_status(CURL *h) {
    long code = 0;
    f.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}
