#include <zlib.h>

// deflateInit/inflateInit are macros; Swift sees only the underscored functions.
static inline int repro_deflate_init(z_streamp strm, int level) {
    return deflateInit(strm, level);
}
static inline int repro_inflate_init(z_streamp strm) {
    return inflateInit(strm);
}
