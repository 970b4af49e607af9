/** The three roles a Dask cluster's certificates are made for. */
export const ROLES = ['scheduler', 'worker', 'client'] as const;
export type Role = (typeof ROLES)[number];
