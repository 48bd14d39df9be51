import KeyService

await VHSMDProgram.main()
