#!/bin/sh
# Prints the greeting of the sample project.
echo "Helo, world"
