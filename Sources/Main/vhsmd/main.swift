import KeyService
import PostgreSQLCluster

// The host vhsmd: config mode may also run as one node of a cluster on PostgreSQL (storage.postgresql).
await VHSMDProgram.main(cluster: PostgreSQLDriver())
