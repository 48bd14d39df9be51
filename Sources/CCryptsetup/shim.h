/* libcryptsetup for Swift: the header as is, plus the macros Swift cannot import.
 * Flags built with (UINT32_C(1) << n) and the memfd_create(2) syscall (not in Swift's Glibc module)
 * are re-exported here as constants and one inline function. No other C lives in this project's Volume code. */
#ifndef VHSM_CCRYPTSETUP_SHIM_H
#define VHSM_CCRYPTSETUP_SHIM_H

#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <libcryptsetup.h>

/* crypt_activate_* flags. */
static const uint32_t CCRYPT_ACTIVATE_READONLY = CRYPT_ACTIVATE_READONLY;
static const uint32_t CCRYPT_ACTIVATE_PRIVATE = CRYPT_ACTIVATE_PRIVATE;
static const uint32_t CCRYPT_ACTIVATE_ALLOW_DISCARDS = CRYPT_ACTIVATE_ALLOW_DISCARDS;
static const uint32_t CCRYPT_ACTIVATE_NO_JOURNAL = CRYPT_ACTIVATE_NO_JOURNAL;
static const uint32_t CCRYPT_ACTIVATE_NO_READ_WORKQUEUE = CRYPT_ACTIVATE_NO_READ_WORKQUEUE;
static const uint32_t CCRYPT_ACTIVATE_NO_WRITE_WORKQUEUE = CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE;

/* crypt_params_verity.flags. */
static const uint32_t CCRYPT_VERITY_NO_HEADER = CRYPT_VERITY_NO_HEADER;
static const uint32_t CCRYPT_VERITY_CHECK_HASH = CRYPT_VERITY_CHECK_HASH;

/* crypt_pbkdf_type.flags. */
static const uint32_t CCRYPT_PBKDF_NO_BENCHMARK = CRYPT_PBKDF_NO_BENCHMARK;

/* crypt_persistent_flags_get(CRYPT_FLAGS_REQUIREMENTS) bits. */
static const uint32_t CCRYPT_REQUIREMENT_OFFLINE_REENCRYPT = CRYPT_REQUIREMENT_OFFLINE_REENCRYPT;
static const uint32_t CCRYPT_REQUIREMENT_ONLINE_REENCRYPT = CRYPT_REQUIREMENT_ONLINE_REENCRYPT;
static const uint32_t CCRYPT_REQUIREMENT_UNKNOWN = CRYPT_REQUIREMENT_UNKNOWN;

/* crypt_wipe flags. */
static const uint32_t CCRYPT_WIPE_NO_DIRECT_IO = CRYPT_WIPE_NO_DIRECT_IO;

/* memfd_create(2) flags and the call itself: Swift's Glibc module declares neither. */
static const unsigned int CCRYPT_MFD_CLOEXEC = 0x0001U;

static inline int ccrypt_memfd_create(const char *name, unsigned int flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}

#endif
