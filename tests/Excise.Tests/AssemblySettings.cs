// libtorch's default random generator and its thread pool are process-wide: tests that seed or time them
// must not interleave, and on a 2-core machine running test classes in parallel gains nothing anyway.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
