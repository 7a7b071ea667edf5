#include "ccurl.h"

int repro_curl_global_init(void) { return (int)curl_global_init(CURL_GLOBAL_DEFAULT); }
CURLcode repro_curl_set_long(CURL *h, CURLoption opt, long value) { return curl_easy_setopt(h, opt, value); }
CURLcode repro_curl_set_off(CURL *h, CURLoption opt, long long value) { return curl_easy_setopt(h, opt, (curl_off_t)value); }
CURLcode repro_curl_set_str(CURL *h, CURLoption opt, const char *value) { return curl_easy_setopt(h, opt, value); }
CURLcode repro_curl_set_ptr(CURL *h, CURLoption opt, void *value) { return curl_easy_setopt(h, opt, value); }
CURLcode repro_curl_set_fn(CURL *h, CURLoption opt, repro_curl_io_fn fn) { return curl_easy_setopt(h, opt, fn); }
long repro_curl_status(CURL *h) {
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}
