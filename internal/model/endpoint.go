package model

// Endpoint is one network endpoint of a service.
type Endpoint struct {
	Address string
	// Ports maps the service port name ("" for an unnamed single port) to the
	// endpoint's port number.
	Ports map[string]uint32
	// Labels are the workload's labels (filled from the Workload named by
	// WorkloadName when the slice itself carries none).
	Labels         map[string]string
	ServiceAccount string
	Locality       string
	// WorkloadName is the pod the endpoint belongs to, if known (same namespace).
	WorkloadName string
	// Ready, Serving and Terminating follow EndpointSlice conditions.
	Ready       bool
	Serving     bool
	Terminating bool
}

// Routable reports whether traffic may be sent to the endpoint: it is ready
// and not terminating.
func (e *Endpoint) Routable() bool { return e.Ready && !e.Terminating }

// EndpointSet is one EndpointSlice: a part of one service's endpoints.
type EndpointSet struct {
	Name      string
	Namespace string
	// ServiceName is the name of the Service (in Namespace) the set belongs to.
	ServiceName string
	Endpoints   []Endpoint
}
