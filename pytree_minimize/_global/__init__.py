"""The global methods (`differential_evolution`, `dual_annealing`, `basinhopping`, `shgo`,
`direct`) over any backend."""
