#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <string.h>
#include <unistd.h>

/// 1 when something listens on the unix datagram socket at `path` (a connect succeeds), else 0. In C so the
/// socket constants come straight from the headers: Swift's view of them through Glibc varied between builds.
static inline int outlawd_datagram_listener(const char *path) {
    struct sockaddr_un address;
    if (strlen(path) >= sizeof(address.sun_path)) return 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, path);
    int listening = connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0;
    close(fd);
    return listening;
}
