package execindex

// SetSmall sets the largest set the small plan of Query walks, so that
// tests cover the large plan with little data.
func SetSmall(ix *Index, n int) { ix.small = n }

// JoinKeys is joinKeys, the keys hash's encoding of an entry's keys.
var JoinKeys = joinKeys
