"""BPF objects from OCI registries: references, the distribution API, image formats, cosign.

`fetch.fetch_image` is the one entry point (ElfSources, the operator's validation and any
admission check call it); `push.push_object` publishes an object as the plain artifact.
"""
