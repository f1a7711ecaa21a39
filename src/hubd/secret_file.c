#include "hubd/secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int hub_secret_file_write(const char *path, const char *text, size_t len, struct hub_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "path too long: %s", path);
    unlink(tmp);
    /* 0600 from the first byte, whatever the umask. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return HUB_ERR(err, HUB_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    int ok = write_all(fd, text, len) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        return HUB_ERR(err, HUB_E_IO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}
