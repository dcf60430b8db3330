package ca

import (
	"context"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
)

// FakeTokenReviewer is an in-memory TokenReviewer for tests and the file
// provider mode: it accepts exactly the tokens added with Add, for the
// audiences given there, and counts the reviews it answers.
type FakeTokenReviewer struct {
	mu      sync.Mutex
	tokens  map[string]fakeToken
	reviews int
}

// fakeToken is what the fake API server knows about one token.
type fakeToken struct {
	username  string
	groups    []string
	audiences []string
}

// NewFakeTokenReviewer returns a FakeTokenReviewer that knows no token.
func NewFakeTokenReviewer() *FakeTokenReviewer {
	return &FakeTokenReviewer{tokens: map[string]fakeToken{}}
}

// AddServiceAccount makes token a valid token of service account ns/sa for
// audiences, reviewed as the API server reviews service-account tokens.
func (f *FakeTokenReviewer) AddServiceAccount(token, ns, sa string, audiences ...string) {
	f.Add(token, "system:serviceaccount:"+ns+":"+sa,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}, audiences...)
}

// Add makes token valid for user username in groups, for audiences.
func (f *FakeTokenReviewer) Add(token, username string, groups []string, audiences ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = fakeToken{username: username, groups: groups, audiences: audiences}
}

// Remove makes token unknown again (revoked or deleted service account).
func (f *FakeTokenReviewer) Remove(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

// Reviews returns how many reviews the fake has answered.
func (f *FakeTokenReviewer) Reviews() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reviews
}

// Review implements TokenReviewer as the API server does: an unknown token,
// or one whose audiences do not intersect the requested ones, is not
// authenticated; otherwise status.audiences is the intersection.
func (f *FakeTokenReviewer) Review(_ context.Context, token string, audiences []string) (*authnv1.TokenReviewStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reviews++
	t, ok := f.tokens[token]
	if !ok {
		return &authnv1.TokenReviewStatus{Error: "invalid bearer token"}, nil
	}
	var common []string
	for _, want := range audiences {
		for _, have := range t.audiences {
			if want == have {
				common = append(common, want)
			}
		}
	}
	if len(common) == 0 {
		return &authnv1.TokenReviewStatus{Error: "token audiences are invalid for the target audiences"}, nil
	}
	return &authnv1.TokenReviewStatus{
		Authenticated: true,
		User:          authnv1.UserInfo{Username: t.username, Groups: append([]string(nil), t.groups...)},
		Audiences:     common,
	}, nil
}
