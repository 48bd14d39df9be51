#include <linux/sev-guest.h>
