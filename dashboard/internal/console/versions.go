package console

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/stripeq/stripeq/pkg/apiversion"
	"github.com/stripeq/stripeq/pkg/execindex"
)

// versionsTTL is how long the versions banner reuses what it read: one
// small read of the index per page per half minute at most.
const versionsTTL = 30 * time.Second

// untestedVersion is one API version of retained executions that the
// built-in handlers are not tested with, for the Console's banner.
type untestedVersion struct {
	Version string
	Count   int64
	URL     string // the Console filtered to it
}

// versionBanner caches the untested versions the index holds.
type versionBanner struct {
	mu       sync.Mutex
	read     time.Time
	untested []untestedVersion
}

// untestedVersions returns the API versions of retained executions that
// apiversion.BuiltinsCover does not cover, read at most every versionsTTL.
// A failed read shows no banner: the page itself reports Redis errors.
func (s *server) untestedVersions(ctx context.Context) []untestedVersion {
	b := &s.versions
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.read.IsZero() && time.Since(b.read) < versionsTTL {
		return b.untested
	}
	vals, err := s.index.Values(ctx, execindex.FieldAPIVersion)
	if err != nil {
		return b.untested
	}
	b.read, b.untested = time.Now(), nil
	for _, v := range vals {
		if !apiversion.BuiltinsCover(v.Value) {
			b.untested = append(b.untested, untestedVersion{v.Value, v.Count, "/?" + url.Values{"api_version": {v.Value}}.Encode()})
		}
	}
	return b.untested
}
