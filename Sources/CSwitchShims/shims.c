/* C helpers for the syscalls whose structs and macros Swift imports badly (ifreq unions, CMSG). */
#define _GNU_SOURCE 1
#include "CSwitchShims.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

int sw_tap_open(const char *name, char actual[16]) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); return -e; }
    int hdr = 12;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) { int e = errno; close(fd); return -e; }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
    return fd;
}

int sw_tap_set_offload(int fd, unsigned int flags) {
    return ioctl(fd, TUNSETOFFLOAD, flags) < 0 ? -errno : 0;
}

static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    int r = ioctl(s, req, ifr) < 0 ? -errno : 0;
    close(s);
    return r;
}

int sw_if_set_mac(const char *name, const uint8_t mac[6]) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return ifreq_ioctl(name, SIOCSIFHWADDR, &ifr);
}

int sw_if_set_mtu(const char *name, int mtu) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_mtu = mtu;
    return ifreq_ioctl(name, SIOCSIFMTU, &ifr);
}

int sw_if_set_up(const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int r = ifreq_ioctl(name, SIOCGIFFLAGS, &ifr);
    if (r < 0) return r;
    ifr.ifr_flags |= IFF_UP;
    return ifreq_ioctl(name, SIOCSIFFLAGS, &ifr);
}

int sw_if_index(const char *name) {
    unsigned int i = if_nametoindex(name);
    return i == 0 ? -errno : (int)i;
}

int sw_send_fd(int sock, int fd, const void *data, int len) {
    struct iovec iov = { .iov_base = (void *)data, .iov_len = (size_t)len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

int sw_recv_fd(int sock, int *fd, void *data, int len) {
    struct iovec iov = { .iov_base = data, .iov_len = (size_t)len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    *fd = -1;
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof(int));
    return (int)n;
}

int sw_peer_cred(int sock, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred cred;
    socklen_t l = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0) return -errno;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid;
    return 0;
}

int sw_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int sw_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}
