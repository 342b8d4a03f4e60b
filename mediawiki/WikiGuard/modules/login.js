/**
 * The second step of a login for an account with a passkey: a button that asks the browser
 * for the passkey (options from action=wikiguardpasskeylogin), puts its signed answer in the
 * form's hidden wikiguardpasskey field and submits the form. The code field stays usable for
 * an authenticator app or a recovery code.
 */
( function () {
	'use strict';
	var webauthn = require( './webauthn.js' );

	$( function () {
		var field = document.querySelector( 'input[name="wikiguardpasskey"]' ),
			form, code, wrap, button, status, anchor;
		if ( !field || !field.form ) {
			return;
		}
		form = field.form;
		// A value posted back with a failed attempt is stale.
		field.value = '';
		code = form.querySelector( 'input[name="wikiguardcode"]' );

		wrap = document.createElement( 'div' );
		wrap.className = 'mw-ui-vform-field wikiguard-passkey-login';
		button = document.createElement( 'button' );
		button.type = 'button';
		button.id = 'wikiguard-passkey-login';
		button.className = 'mw-ui-button mw-ui-progressive mw-ui-block';
		button.textContent = mw.msg( 'wikiguard-passkey-use' );
		status = document.createElement( 'p' );
		status.className = 'wikiguard-passkey-status';
		wrap.appendChild( button );
		wrap.appendChild( status );
		anchor = code && code.closest ? code.closest( '.mw-ui-vform-field, .mw-htmlform-field-HTMLTextField' ) : null;
		if ( anchor && anchor.parentNode ) {
			anchor.parentNode.insertBefore( wrap, anchor );
		} else {
			form.insertBefore( wrap, form.firstChild );
		}

		if ( !webauthn.supported() ) {
			button.disabled = true;
			status.textContent = mw.msg( 'wikiguard-passkey-unsupported' );
			return;
		}
		button.addEventListener( 'click', function () {
			button.disabled = true;
			status.textContent = '';
			new mw.Api().postWithToken( 'login', {
				action: 'wikiguardpasskeylogin',
				formatversion: 2
			} ).then( function ( res ) {
				var options = JSON.parse( res.wikiguardpasskeylogin.options );
				return navigator.credentials.get( { publicKey: webauthn.requestOptions( options ) } );
			} ).then( function ( assertion ) {
				var submit = form.querySelector( '[type="submit"]' );
				field.value = JSON.stringify( webauthn.encodeAssertion( assertion ) );
				if ( code ) {
					code.value = '';
				}
				if ( form.requestSubmit ) {
					form.requestSubmit( submit || undefined );
				} else if ( submit ) {
					submit.click();
				} else {
					form.submit();
				}
			}, function ( error, result ) {
				button.disabled = false;
				status.textContent = webauthn.failure( error, result );
			} );
		} );
	} );
}() );
