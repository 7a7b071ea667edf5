#ifndef REPRO_CCURL_H
#define REPRO_CCURL_H
// libcurl, loaded on first use with dlopen: linking it would make every repro start (a cache
// hit included) load libcurl and the twenty libraries it pulls in. These wrappers are the whole
// surface repro uses; curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot
// call, so each argument type has its own function.
#include <curl/curl.h>
#include <stddef.h>

typedef size_t (*repro_curl_io_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);

// 0 when libcurl is loaded and initialized; otherwise -1, and repro_curl_load_error() says why.
int repro_curl_load(void);
const char *repro_curl_load_error(void);

CURL *repro_curl_easy_init(void);
void repro_curl_easy_cleanup(CURL *h);
void repro_curl_easy_reset(CURL *h);
CURLcode repro_curl_easy_perform(CURL *h);
const char *repro_curl_easy_strerror(CURLcode code);
struct curl_slist *repro_curl_slist_append(struct curl_slist *list, const char *line);
void repro_curl_slist_free_all(struct curl_slist *list);

CURLcode repro_curl_set_long(CURL *h, CURLoption opt, long value);
CURLcode repro_curl_set_off(CURL *h, CURLoption opt, long long value);
CURLcode repro_curl_set_str(CURL *h, CURLoption opt, const char *value);
CURLcode repro_curl_set_ptr(CURL *h, CURLoption opt, void *value);
CURLcode repro_curl_set_fn(CURL *h, CURLoption opt, repro_curl_io_fn fn);
long repro_curl_status(CURL *h);
#endif
