from fedsph.cli import main

raise SystemExit(main())
