from helpers.synth._v1 import main

main()
