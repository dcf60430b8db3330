package file

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/internal/model"
)

// racyWindow: a file whose modification time is this close to when it was
// last read is re-read on every poll, because a later write within the
// file system's timestamp granularity would leave size and mtime unchanged.
const racyWindow = 3 * time.Second

// fileEntry is the cached state of one manifest file.
type fileEntry struct {
	rel    string // path relative to Dir, with forward slashes
	size   int64
	mtime  time.Time
	readAt time.Time
	hash   [sha256.Size]byte
	docs   []docResult
	// readErr is set when the file could not be read; docs then hold what
	// was decoded from it before, if anything.
	readErr *model.ObjectError
}

// fileRef is a manifest path found under Dir.
type fileRef struct {
	rel, abs string
	walkErr  error
}

// listFiles returns the *.yaml and *.yml files under dir, sorted. Hidden
// entries (names starting with ".", such as a ConfigMap volume's "..data")
// are skipped; symbolic links to files are followed, links to directories
// are not. It fails only when dir itself cannot be read.
func listFiles(dir string) ([]fileRef, error) {
	var out []fileRef
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if path == dir {
			return err
		}
		rel := relPath(dir, path)
		switch {
		case err != nil:
			out = append(out, fileRef{rel: rel, abs: path, walkErr: err})
			return nil
		case strings.HasPrefix(d.Name(), "."):
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir() || !isManifest(d.Name()):
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				return nil
			}
		case !d.Type().IsRegular():
			return nil
		}
		out = append(out, fileRef{rel: rel, abs: path})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, nil
}

func isManifest(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

func relPath(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		rel = path
	}
	return filepath.ToSlash(rel)
}

// stat is what a poll observes of a file without reading it.
type stat struct {
	size  int64
	mtime time.Time
}

// same reports whether two observations of a file match.
func (s stat) same(o stat) bool { return s.size == o.size && s.mtime.Equal(o.mtime) }

// statFile stats ref, following symbolic links. ok is false when the file has
// disappeared since it was listed.
func statFile(ref fileRef) (st stat, ok bool, err error) {
	if ref.walkErr != nil {
		return stat{}, true, ref.walkErr
	}
	fi, err := os.Stat(ref.abs)
	if errors.Is(err, fs.ErrNotExist) {
		return stat{}, false, nil
	}
	if err != nil {
		return stat{}, true, err
	}
	return stat{size: fi.Size(), mtime: fi.ModTime()}, true, nil
}

// observation is a file's stat and when a poll first saw it.
type observation struct {
	st    stat
	since time.Time
}

// readFile returns the entry for ref, whose stat is st (or statErr), reusing
// prev (the entry from the last scan, or nil) when the file is unchanged. With
// verify set, a file whose stat changed while it was read is treated as still
// being written: prev is returned and the next poll tries again.
func readFile(ref fileRef, st stat, statErr error, prev *fileEntry, domain string, verify bool) *fileEntry {
	now := time.Now()
	if statErr == nil && prev != nil && prev.readErr == nil && st.size == prev.size &&
		st.mtime.Equal(prev.mtime) && prev.readAt.Sub(prev.mtime) > racyWindow {
		return prev
	}
	var data []byte
	err := statErr
	if err == nil {
		data, err = os.ReadFile(ref.abs)
	}
	if err != nil {
		e := &fileEntry{rel: ref.rel, readErr: &model.ObjectError{Source: ref.rel, Message: "cannot read file: " + err.Error()}}
		if prev != nil {
			e.docs = prev.docs
		}
		return e
	}
	if verify {
		if after, ok, err := statFile(ref); !ok || err != nil || !after.same(st) {
			return prev
		}
	}
	e := &fileEntry{rel: ref.rel, size: st.size, mtime: st.mtime, readAt: now, hash: sha256.Sum256(data)}
	if prev != nil && prev.readErr == nil && prev.hash == e.hash {
		e.docs = prev.docs
	} else {
		e.docs = decodeFile(ref.rel, data, domain)
	}
	return e
}

// decodeFile decodes every document of a file. Documents are numbered from
// 1, counting only documents with content.
func decodeFile(rel string, data []byte, domain string) []docResult {
	var out []docResult
	for i, d := range splitDocuments(data) {
		if res, ok := decodeDoc(d.data, rel+"#"+strconv.Itoa(i+1), d.line, domain); ok {
			out = append(out, res)
		}
	}
	return out
}
