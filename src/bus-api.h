/* SPDX-License-Identifier: MIT */
/* bus-api.h — the com.piano_tek.GazelleScheduler1 object (bus-api.c) and its subscriptions
 * (bus-watch.c) on a context's bus. */
#pragma once

#include "daemon.h"

/* Registers the object, the subscription tracker and the JobRemoved match on c->bus (any
 * connection: the daemon's bus, or one end of a socketpair in tests/unit/test-bus-api.c). */
int bus_api_register(Context *c);
