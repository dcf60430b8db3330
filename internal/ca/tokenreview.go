package ca

import (
	"context"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedauthnv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// DefaultTokenAudience is istiod's default TOKEN_AUDIENCES: the audience a
// caller's service-account token must carry to be accepted by the CA and the
// secure xDS port.
const DefaultTokenAudience = "istio-ca"

// TokenReviewer asks Kubernetes whether a bearer token is valid for one of
// audiences. It returns the TokenReview status as the API server reported it;
// an error means the review itself could not be made.
type TokenReviewer interface {
	Review(ctx context.Context, token string, audiences []string) (*authnv1.TokenReviewStatus, error)
}

// KubeTokenReviewer is the TokenReviewer backed by the Kubernetes
// TokenReview API, as istiod's tokenreview.ValidateK8sJwt.
type KubeTokenReviewer struct {
	// Client is a typed authentication/v1 client, e.g.
	// clientset.AuthenticationV1().
	Client typedauthnv1.TokenReviewsGetter
}

// Review implements TokenReviewer by creating a TokenReview.
func (k KubeTokenReviewer) Review(ctx context.Context, token string, audiences []string) (*authnv1.TokenReviewStatus, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: audiences}}
	res, err := k.Client.TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating TokenReview: %w", err)
	}
	return &res.Status, nil
}
