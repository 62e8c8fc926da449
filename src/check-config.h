/* SPDX-License-Identifier: MIT */
/* check-config.h — the `check-config` command (check-config.c). */
#pragma once

#include "config.h"

/* argv[0] is "check-config". 0 valid, 1 valid with a problem (missing credential, store
 * unreachable), 2 invalid configuration or usage. */
int check_config_main(BusScope bus, int argc, char **argv);
