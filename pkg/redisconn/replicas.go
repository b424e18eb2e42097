package redisconn

import "errors"

// ErrNotReplicated means a write reached the master but not enough replicas
// confirmed it in time (REDIS_WAIT_REPLICAS: Redis's WAIT after the write,
// on the same connection; see pkg/taskstore). The write may still
// replicate later; the caller should treat it as not durable (the api
// answers 503, so that Stripe delivers the event again and finds it
// stored, as a duplicate).
var ErrNotReplicated = errors.New("write not confirmed by enough Redis replicas")
