/* libpcap for Swift: bpf_filter and bpf_validate for the dataplane's capture filters, pcap_compile
   and the pcap_dump_* writer for `switchd capture`. <sys/select.h> first, as in CLiburing, so that
   fd_set keeps the one definition the Glibc module agrees with. */
#include <sys/select.h>
#include <pcap/pcap.h>
