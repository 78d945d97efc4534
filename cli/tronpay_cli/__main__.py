"""`python -m tronpay_cli`: the same as `tronpay`."""

from tronpay_cli.main import main

if __name__ == "__main__":
    main()
