package execindex

import "context"

// SetSmall sets the largest set the small plan of Query walks, so that
// tests cover the large plan with little data.
func SetSmall(ix *Index, n int) { ix.small = n }

// JoinKeys is joinKeys, the keys hash's encoding of an entry's keys.
var JoinKeys = joinKeys

// Forget runs what Values runs on the values it found with no execution:
// it drops those whose set is still empty.
func Forget(ix *Index, field string, vals ...any) (int64, error) {
	return ix.forget(context.Background(), field, vals...)
}
