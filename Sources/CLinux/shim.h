#ifndef VHSM_CLINUX_SHIM_H
#define VHSM_CLINUX_SHIM_H

#include <sys/ioctl.h>
#include <linux/sev-guest.h>

/* _IOWR() is not importable; publish the request numbers.
 * _IOWR('S', nr, struct snp_guest_request_ioctl) = 0xC0205300, 0xC0205301, 0xC0205302. */
static const unsigned long CLINUX_SNP_GET_REPORT = SNP_GET_REPORT;
static const unsigned long CLINUX_SNP_GET_DERIVED_KEY = SNP_GET_DERIVED_KEY;
static const unsigned long CLINUX_SNP_GET_EXT_REPORT = SNP_GET_EXT_REPORT;

#endif
