#ifndef REPRO_CCURL_H
#define REPRO_CCURL_H
// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these typed
// wrappers are the whole surface repro uses.
#include <curl/curl.h>
#include <stddef.h>

typedef size_t (*repro_curl_io_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);

int repro_curl_global_init(void);
CURLcode repro_curl_set_long(CURL *h, CURLoption opt, long value);
CURLcode repro_curl_set_off(CURL *h, CURLoption opt, long long value);
CURLcode repro_curl_set_str(CURL *h, CURLoption opt, const char *value);
CURLcode repro_curl_set_ptr(CURL *h, CURLoption opt, void *value);
CURLcode repro_curl_set_fn(CURL *h, CURLoption opt, repro_curl_io_fn fn);
long repro_curl_status(CURL *h);
#endif
