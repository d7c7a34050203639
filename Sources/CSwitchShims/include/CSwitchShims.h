/* C helpers for the syscalls whose structs and macros Swift imports badly (ifreq unions, CMSG). */
#ifndef CSWITCHSHIMS_H
#define CSWITCHSHIMS_H

#include <stdint.h>

/// Opens /dev/net/tun as a TAP (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, vnet header size 12, 
/// close-on-exec; blocking, so io_uring polls it). `name` may be a template ("sw%d"); the actual name is written to `actual` (16 bytes).
/// Returns the fd or -errno.
int sw_tap_open(const char *name, char actual[16]);

/// TUNSETOFFLOAD with TUN_F_* bits. Returns 0 or -errno.
int sw_tap_set_offload(int fd, unsigned int flags);

/// Sets the hardware address of interface `name` (SIOCSIFHWADDR). Returns 0 or -errno.
int sw_if_set_mac(const char *name, const uint8_t mac[6]);

/// Sets the MTU of interface `name` (SIOCSIFMTU). Returns 0 or -errno.
int sw_if_set_mtu(const char *name, int mtu);

/// Sets IFF_UP on interface `name`. Returns 0 or -errno.
int sw_if_set_up(const char *name);

/// Returns the interface index of `name`, or -errno.
int sw_if_index(const char *name);

/// Sends `len` bytes of `data` and `fd` over unix socket `sock` with SCM_RIGHTS (MSG_NOSIGNAL).
/// Returns the bytes sent (a stream socket may take fewer than `len`) or -errno.
int sw_send_fd(int sock, int fd, const void *data, int len);

/// Receives up to `len` bytes and at most one fd over unix socket `sock`. *fd is -1 when none came.
/// Returns the byte count or -errno.
int sw_recv_fd(int sock, int *fd, void *data, int len);

/// Peer credentials of a connected unix socket (SO_PEERCRED). Returns 0 or -errno.
int sw_peer_cred(int sock, int *pid, unsigned int *uid, unsigned int *gid);

/// Supplementary groups of the peer of a connected unix socket (SO_PEERGROUPS, Linux 4.13). Writes at most
/// `max` gids to `groups`. Returns how many the peer has (more than `max` means the list was cut) or -errno.
int sw_peer_groups(int sock, unsigned int *groups, int max);

/// eventfd(0, EFD_CLOEXEC). Returns the fd or -errno.
int sw_eventfd(void);

/// pipe2(fds, O_CLOEXEC). Returns 0 or -errno.
int sw_pipe_cloexec(int fds[2]);

/// Opens an AF_PACKET socket bound to interface `ifname` with a virtio-net header on every frame
/// (PACKET_VNET_HDR, and PACKET_VNET_HDR_SZ 12 where the kernel has it), PACKET_IGNORE_OUTGOING and
/// promiscuous membership; blocking and close-on-exec. *header_size is set to 12 or 10.
/// Returns the fd or -errno.
int sw_packet_open(const char *ifname, int *header_size);

/// The calling thread's Linux thread id.
int sw_gettid(void);

/* Ring-index accesses for memory shared with another process (vhost-user virtqueues, see
 * Sources/SwitchSys/Fence.swift for why each one is there). static inline: they compile into
 * the Swift caller as single instructions on x86-64 (a plain mov, an mfence for the full fence). */

/// Loads the 16-bit value at `p` with acquire ordering: later loads are not moved before it.
static inline uint16_t sw_load_acquire_u16(const void *p) {
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

/// Stores `v` at `p` with release ordering: earlier loads and stores are not moved after it.
static inline void sw_store_release_u16(void *p, uint16_t v) {
    __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

/// Loads the value at `p` exactly once (relaxed atomic: the compiler neither repeats nor merges it).
static inline uint16_t sw_load_once_u16(const void *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED); }
static inline uint32_t sw_load_once_u32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED); }
static inline uint64_t sw_load_once_u64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED); }

/// A full (sequentially consistent) fence: orders earlier stores before later loads (mfence on x86).
static inline void sw_fence_full(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#endif
