/**
 * Special:WikiGuardSecurity: adding a passkey. The options come from the accounts door
 * through action=wikiguardpasskey (step=begin), the browser makes the credential, and the
 * answer goes back the same way (step=finish); then the page is reloaded to list it.
 */
( function () {
	'use strict';
	var webauthn = require( './webauthn.js' );

	$( function () {
		var root = document.getElementById( 'wikiguard-passkey-add' ),
			status = document.getElementById( 'wikiguard-passkey-status' ),
			input = document.getElementById( 'wikiguard-passkey-name' ),
			button, api;
		if ( !root || !status ) {
			return;
		}
		button = root.querySelector( 'button' );
		if ( !button ) {
			return;
		}

		function say( text, isError ) {
			status.textContent = text;
			status.className = 'wikiguard-passkey-status' + ( isError ? ' wikiguard-passkey-error' : '' );
		}

		if ( !webauthn.supported() ) {
			say( mw.msg( 'wikiguard-passkey-unsupported' ), true );
			button.disabled = true;
			return;
		}
		api = new mw.Api();
		button.addEventListener( 'click', function ( event ) {
			event.preventDefault();
			button.disabled = true;
			say( mw.msg( 'wikiguard-passkey-working' ) );
			api.postWithToken( 'csrf', {
				action: 'wikiguardpasskey',
				step: 'begin',
				name: input ? input.value : '',
				formatversion: 2
			} ).then( function ( res ) {
				var options = JSON.parse( res.wikiguardpasskey.options );
				return navigator.credentials.create( { publicKey: webauthn.creationOptions( options ) } );
			} ).then( function ( credential ) {
				return api.postWithToken( 'csrf', {
					action: 'wikiguardpasskey',
					step: 'finish',
					credential: JSON.stringify( webauthn.encodeRegistration( credential ) ),
					formatversion: 2
				} );
			} ).then( function () {
				say( mw.msg( 'wikiguard-passkey-added' ) );
				location.href = mw.util.getUrl( 'Special:WikiGuardSecurity' );
			}, function ( error, result ) {
				button.disabled = false;
				say( webauthn.failure( error, result ), true );
			} );
		} );
	} );
}() );
