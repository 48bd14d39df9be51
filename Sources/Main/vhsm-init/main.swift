import Boot

VHSMInitProgram.main()
