// zlib as Debian's zlib1g-dev ships it: the gzip streams of the retention archives.
#include <zlib.h>
