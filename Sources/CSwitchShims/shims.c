/* C helpers for the syscalls whose structs and macros Swift imports badly (ifreq unions, CMSG). */
#define _GNU_SOURCE 1
#include "CSwitchShims.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
    return n < 0 ? -errno : (int)n;
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

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

int sw_peer_groups(int sock, unsigned int *groups, int max) {
    socklen_t l = (socklen_t)(max * sizeof(unsigned int));
    if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups, &l) == 0) return (int)(l / sizeof(unsigned int));
    /* ERANGE: the peer has more groups than fit; l says how many bytes they need. */
    return errno == ERANGE ? (int)(l / sizeof(unsigned int)) : -errno;
}

int sw_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int sw_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

#ifndef PACKET_VNET_HDR_SZ
#define PACKET_VNET_HDR_SZ 24 /* Linux 6.6; Debian 12's headers lack it */
#endif

int sw_packet_open(const char *ifname, int *header_size) {
    int index = (int)if_nametoindex(ifname);
    if (index == 0) return -errno;
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return -errno;
    int one = 1, twelve = 12;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) goto fail;
    *header_size = setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR_SZ, &twelve, sizeof twelve) == 0 ? 12 : 10;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) goto fail;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = index;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) goto fail;
    struct packet_mreq mr;
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = index;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) goto fail;
    return fd;
fail:
    {
        int e = errno;
        close(fd);
        return -e;
    }
}

int sw_gettid(void) { return (int)syscall(SYS_gettid); }
