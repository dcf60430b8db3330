package xds

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// typeVersion returns the version of a sorted list of marshalled resources:
// a hash of their names and content hashes. Equal content gives equal
// versions on every replica and after every restart.
func typeVersion(names []string, ms []marshalled) string {
	if len(ms) == 0 {
		return emptyVersion // most scopes have no secrets: no hash per push
	}
	h := sha256.New()
	for i, m := range ms {
		h.Write([]byte(names[i]))
		h.Write([]byte{0})
		h.Write([]byte(m.hash))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// emptyVersion is typeVersion of no resources.
var emptyVersion = func() string {
	sum := sha256.Sum256(nil)
	return hex.EncodeToString(sum[:])[:16]
}()

// edsTerm is an assignment's part in the content hash of a state-of-the-
// world EDS subscription: a hash of its name and content hash. The
// subscription's version XORs the terms of the assignments it holds
// (edsVersion), so it does not depend on order and a change updates it
// in O(1): version ^= old term ^ new term.
func edsTerm(name, hash string) uint64 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(hash))
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// edsPrefix starts every state-of-the-world EDS version.
const edsPrefix = "eds-"

// edsVersion is the version of a state-of-the-world EDS response: the
// content hash of every assignment the stream subscribes to (XOR of their
// edsTerm), whichever of them the response carries. Equal content gives
// equal versions on every replica and after every restart.
func edsVersion(sum uint64) string {
	return edsPrefix + fmt.Sprintf("%016x", sum)
}

// parseEDSVersion returns the content hash an edsVersion names.
func parseEDSVersion(v string) (uint64, bool) {
	rest, ok := strings.CutPrefix(v, edsPrefix)
	if !ok || len(rest) != 16 {
		return 0, false
	}
	sum, err := strconv.ParseUint(rest, 16, 64)
	return sum, err == nil
}
